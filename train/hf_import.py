"""Hugging Face checkpoints into strata: `strata train --init-from DIR` (continued
pretraining), and the DIR forms of `strata generate` and `strata eval`.

DIR is a folder `from_pretrained` reads (config.json + weights): the GPT-2 family
(`model_type: gpt2`) for clm, RoBERTa-PreLayerNorm (`roberta-prelayernorm`, what
`strata export` writes for mlm) for mlm. The weights map exactly (train/hf_models.py); the
checks say what does not fit the build: another architecture or objective, a vocabulary
of another size, a position table shorter than the window.
"""

from __future__ import annotations

from pathlib import Path

import torch

from strata.config import ConfigError
from strata.train.hf_models import SUPPORTED, ArchitectureError, from_hf

AUTO_CLASSES = {"clm": "AutoModelForCausalLM", "mlm": "AutoModelForMaskedLM"}


def load_hf_model(folder: str, dropout: float = 0.0) -> tuple[str, torch.nn.Module]:
    """(objective, strata model in eval mode) of a HF checkpoint folder."""
    import transformers

    if not (Path(folder) / "config.json").exists():
        raise FileNotFoundError(f"{folder}: no config.json (a Hugging Face model folder holds config.json and weights)")
    config = transformers.AutoConfig.from_pretrained(folder)
    if config.model_type not in SUPPORTED:
        raise ArchitectureError(f"{folder}: model_type {config.model_type!r}; strata loads {sorted(SUPPORTED)} "
                                "(GPT-2 family for clm, RoBERTa-PreLayerNorm for mlm)")
    auto = getattr(transformers, AUTO_CLASSES[SUPPORTED[config.model_type][0]])
    hf = auto.from_pretrained(folder)  # the weights are copied into strata's fp32 model
    objective, model = from_hf(hf, dropout)
    return objective, model.eval()


ARCHITECTURES = {"clm": "gpt", "mlm": "encoder"}  # presets.ARCHITECTURES' names


def init_model(folder: str, architecture: str, vocab_size: int, seq_len: int, dropout: float) -> torch.nn.Module:
    """The model `--init-from DIR` starts from, checked against the architecture the run's
    objective trains and the build."""
    try:
        found, model = load_hf_model(folder, dropout)
    except (ArchitectureError, FileNotFoundError) as err:
        raise ConfigError(f"init_from: {err}") from None
    if ARCHITECTURES[found] != architecture:
        raise ConfigError(f"init_from: {folder} holds a {found} model ({type(model).__name__}); the run's objective "
                          f"trains the {architecture} architecture")
    if model.config.vocab_size != vocab_size:
        raise ConfigError(f"init_from: {folder} has a vocabulary of {model.config.vocab_size} ids, the build's tokenizer "
                          f"{vocab_size}: build the data with this model's tokenizer (tokenizer.model: {folder})")
    if model.config.seq_len < seq_len:
        raise ConfigError(f"init_from: {folder} holds {model.config.seq_len} positions; seq_len {seq_len} is longer")
    return model.train()
