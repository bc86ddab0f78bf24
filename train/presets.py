"""Model sizes by name; `model_for` builds the GPT (clm) or the encoder (mlm) of a size.

    preset       layers  heads  dims   parameters
    tiny              2      2    64   0.11M at vocab 64, seq 64 (CPU tests: seconds)
    gpt2-small       12     12   768   124.4M at vocab 50257, seq 1024 (GPT-2 small)
    bert-base        12     12   768   109.5M at vocab 30522, seq 512 (BERT-base: 110M)
    gpt-350m         24     16  1024   354.8M at vocab 50257, seq 1024 (GPT-2 medium)
    gpt-1b           24     16  2048   1.32B at vocab 50257, seq 2048 (GPT-3 XL: 1.3B)

Every preset works with either objective (gpt2-small and bert-base are the same shape);
the names say what they are usually paired with. To count a big model's parameters
without allocating it, build it on the meta device:

    with torch.device("meta"):
        n = model_for("clm", "gpt-1b", vocab_size=50257, seq_len=2048).num_params()
"""

from __future__ import annotations

from strata.train.encoder import Encoder, EncoderConfig
from strata.train.gpt import GPT, GPTConfig

PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768),
    "bert-base": dict(n_layer=12, n_head=12, n_embd=768),
    "gpt-350m": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt-1b": dict(n_layer=24, n_head=16, n_embd=2048),
}


def model_for(objective: str, preset: str, vocab_size: int, seq_len: int, **overrides) -> GPT | Encoder:
    """The model of `preset`'s shape for `objective` ('clm' -> GPT, 'mlm' -> Encoder);
    `overrides` set other config fields (dropout, bias) or replace the preset's."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return model_of(objective, {**PRESETS[preset], "vocab_size": vocab_size, "seq_len": seq_len, **overrides})


def model_of(objective: str, fields: dict) -> GPT | Encoder:
    """The model for `objective` with these config fields (e.g. a run.json's model_config)."""
    if objective == "clm":
        return GPT(GPTConfig(**fields))
    if objective == "mlm":
        return Encoder(EncoderConfig(**fields))
    raise ValueError(f"objective must be 'clm' or 'mlm', got {objective!r}")
