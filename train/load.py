"""A model and its tokenizer from a training run (RUN: a checkpoint and the build's
tokenizer) or from a Hugging Face folder (DIR: `strata export`'s output or another
GPT-2 / RoBERTa-PreLayerNorm checkpoint and its tokenizer.json), for generate and eval."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from strata.manifests.layout import RUN_RECORD
from strata.manifests.manifest import Manifest
from strata.tokenize.encoders import HFTokenizerEncoder, SentencePieceEncoder, load_build_encoder, load_encoder
from strata.train.checkpoint import run_model
from strata.train.hf_import import load_hf_model


@dataclass
class Loaded:
    objective: str
    model: torch.nn.Module
    encoder: SentencePieceEncoder | HFTokenizerEncoder
    run: dict | None  # run.json of a RUN


def load_model(source: str, step: int | None = None) -> Loaded:
    if (Path(source) / RUN_RECORD).exists():
        model, record, _ = run_model(source, step)
        encoder = load_build_encoder(record["data"], Manifest.read(record["data"]).tokenizer)
        return Loaded(record["objective"], model, encoder, record)
    if step is not None:
        raise ValueError(f"{source}: --step applies to a training run, not a model folder")
    objective, model = load_hf_model(source)
    return Loaded(objective, model, load_encoder(source), None)
