"""What the mappings of train/hf_models.py, hf_seq2seq.py and hf_electra.py share."""

from __future__ import annotations

import torch

QKV = ("query", "key", "value")  # BERT-family names of the three parts of strata's c_attn


class ArchitectureError(ValueError):
    """A checkpoint strata cannot load into its models, or a model no HF class holds exactly."""


def with_zero_biases(state: dict, model: torch.nn.Module) -> dict:
    """`state` with a zero bias for every Linear and LayerNorm that has none (`bias=False`:
    HF's classes always have biases, and a zero bias is the same function)."""
    state = dict(state)
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and module.bias is None and name != "lm_head":
            state[f"{name}.bias"] = torch.zeros(module.weight.shape[0])
    return state


def split_linear(state: dict, ours: str, theirs: list[str]) -> dict:
    """One stacked Linear of ours (e.g. c_attn: query, key, value) as len(theirs) HF Linears,
    split along the output rows: {f"{name}.weight"/".bias": tensor}."""
    out = {}
    for kind in ("weight", "bias"):
        for name, part in zip(theirs, state[f"{ours}.{kind}"].chunk(len(theirs))):
            out[f"{name}.{kind}"] = part
    return out


def renamed(state: dict, names: dict[str, str]) -> dict:
    """{HF name: tensor} for every (ours -> theirs) module pair, weight and bias."""
    return {f"{theirs}.{kind}": state[f"{ours}.{kind}"] for ours, theirs in names.items() for kind in ("weight", "bias")}


def check_layer_norm_eps(norm_eps: float, architecture: str) -> None:
    if norm_eps != 1e-5:
        raise ArchitectureError(f"{architecture}'s LayerNorms have epsilon 1e-5; this model has norm_eps={norm_eps}")
