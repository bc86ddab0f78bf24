"""Model sizes by name; `build_model` builds an architecture (gpt, encoder, t5) of a size,
`model_for` the one an objective trains.

    preset       layers  heads  dims   parameters
    tiny              2      2    64   0.11M at vocab 64, seq 64 (CPU tests: seconds)
    gpt2-small       12     12   768   124.4M at vocab 50257, seq 1024 (GPT-2 small)
    bert-base        12     12   768   109.5M at vocab 30522, seq 512 (BERT-base: 110M)
    gpt-350m         24     16  1024   354.8M at vocab 50257, seq 1024 (GPT-2 medium)
    gpt-1b           24     16  2048   1.32B at vocab 50257, seq 2048 (GPT-3 XL: 1.3B)
    t5-tiny        2+2      2    64   encoder-decoder for CPU tests
    t5-small       6+6      8   512   61.1M at vocab 32128, seq 512 (T5-small: 60M)

Every preset works with every architecture (gpt2-small and bert-base are the same shape);
the names say what they are usually paired with. To count a big model's parameters
without allocating it, build it on the meta device:

    with torch.device("meta"):
        n = model_for("clm", "gpt-1b", vocab_size=50257, seq_len=2048).num_params()
"""

from __future__ import annotations

from strata.train.electra import Electra, ElectraConfig
from strata.train.encoder import Encoder, EncoderConfig
from strata.train.encoder_heads import PairEncoder, PairEncoderConfig, SpanBERT, SpanBERTConfig
from strata.train.gpt import GPT, GPTConfig
from strata.train.t5 import T5, T5Config
from strata.train.xlnet import XLNet

PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768),
    "bert-base": dict(n_layer=12, n_head=12, n_embd=768),
    "gpt-350m": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt-1b": dict(n_layer=24, n_head=16, n_embd=2048),
}


# encoder-decoder shapes: layers of each stack
SEQ2SEQ_PRESETS: dict[str, dict[str, int]] = {
    "t5-tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "t5-small": dict(n_layer=6, n_head=8, n_embd=512),
}
ARCHITECTURES = {
    "gpt": (GPT, GPTConfig), "encoder": (Encoder, EncoderConfig), "t5": (T5, T5Config),
    "spanbert": (SpanBERT, SpanBERTConfig), "pair_encoder": (PairEncoder, PairEncoderConfig),
    "electra": (Electra, ElectraConfig), "xlnet": (XLNet, EncoderConfig),
}


def build_model(architecture: str, preset: str, vocab_size: int, seq_len: int, **overrides):
    """The model of `architecture` in `preset`'s shape; `overrides` set other config
    fields (dropout, bias) or replace the preset's."""
    shapes = {**PRESETS, **SEQ2SEQ_PRESETS}
    if preset not in shapes:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(shapes)}")
    model, config = ARCHITECTURES[architecture]
    return model(config(**{**shapes[preset], "vocab_size": vocab_size, "seq_len": seq_len, **overrides}))


def model_for(objective: str, preset: str, vocab_size: int, seq_len: int, **overrides):
    """The model `objective` trains (its `architecture`), of `preset`'s shape."""
    from strata.train.objectives.registry import OBJECTIVES  # the objectives build their models here

    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
    return build_model(OBJECTIVES[objective].architecture, preset, vocab_size, seq_len, **overrides)


def model_of(objective: str, fields: dict):
    """The model `objective` trains with these config fields (e.g. a run.json's model_config)."""
    from strata.train.objectives.registry import OBJECTIVES

    model, config = ARCHITECTURES[OBJECTIVES[objective].architecture]
    return model(config(**fields))
