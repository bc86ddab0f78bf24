"""Validation: the objective's loss on the val shards, per category and overall, and the
measures that compare objectives and tokenizers fairly.

    loss          mean of the objective's loss over its targets (nats per target token)
    perplexity    exp(loss)
    bpb           bits per byte: total nats of the target tokens over the UTF-8 bytes they
                  stand for, / ln 2 (tokenize/pieces.py; specials stand for 0 bytes), for
                  every objective whose loss is a likelihood of its targets
    word_perplexity  exp(total nats / words of the target text), for CLM (whose targets
                  are running text), as the classic LM papers report it
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import torch

from strata.manifests.manifest import Manifest, TokenizerEntry
from strata.redact import redact_url
from strata.storage import filesystem
from strata.tokenize.encoders import build_tokenizer_path, load_encoder
from strata.tokenize.pieces import PieceTable
from strata.train.data import StreamingWindows
from strata.train.runtime import all_reduce_sum, on_device

log = logging.getLogger("strata.train")
from strata.train.objectives.core import IGNORE_INDEX, Objective


def build_pieces(data: str, tokenizer: TokenizerEntry) -> PieceTable | None:
    """The piece table of a build's tokenizer (sentencepiece or HF), its file checked
    against the manifest; None (and a warning) if the build was copied without its
    tokenizer: training needs only the shards, and validation then reports no bits per byte."""
    path = build_tokenizer_path(data, tokenizer)
    fs, local = filesystem(path)
    try:
        with fs.open(local, "rb") as f:
            model = f.read()
    except FileNotFoundError:
        log.warning("%s: no tokenizer model; validation reports no bits per byte", redact_url(path))
        return None
    if hashlib.sha256(model).hexdigest() != tokenizer.sha256:
        raise ValueError(f"{redact_url(path)}: sha256 differs from the manifest's tokenizer entry")
    return PieceTable.of_texts(load_encoder(path).piece_texts())


@dataclass
class Totals:
    """Sums over the target tokens of a stream of batches."""

    nats: float = 0.0
    targets: float = 0.0
    bytes: float = 0.0
    words: float = 0.0

    def add(self, objective: Objective, pieces: PieceTable | None, inputs: dict, loss: float, n: int) -> None:
        self.nats += loss * n
        self.targets += n
        if pieces is None:
            return
        targets = inputs["targets"].cpu().numpy()
        chosen = targets != IGNORE_INDEX
        self.bytes += int(pieces.bytes[targets[chosen]].sum())
        if objective.words:
            self.words += pieces.words(inputs["idx"].cpu().numpy()[chosen], targets[chosen])

    def values(self) -> list[float]:
        return [self.nats, self.targets, self.bytes, self.words]

    def __add__(self, other: "Totals") -> "Totals":
        return Totals(*(a + b for a, b in zip(self.values(), other.values())))

    def row(self, objective: Objective) -> dict:
        loss = self.nats / self.targets
        row = {"loss": loss, "tokens": int(self.targets), "perplexity": math.exp(min(loss, 50.0))}
        if objective.bits_per_byte and self.bytes:
            row["bpb"] = self.nats / self.bytes / math.log(2)
        if objective.words and self.words:
            row["word_perplexity"] = math.exp(min(self.nats / self.words, 50.0))
        return row


class Validation:
    """Per-category val streams, read from their start at every evaluation: at most
    eval_batches global batches of a category, and no more than its val tokens hold."""

    def __init__(self, cfg, rt, manifest: Manifest, categories: list[str], objective: Objective,
                 pieces: PieceTable | None):
        """pieces: build_pieces(cfg.data, manifest.tokenizer) (None: no bits per byte)."""
        self.streams: dict[str, StreamingWindows] = {}
        self.pieces = pieces
        for category in categories:
            val_tokens = manifest.categories[category].val_tokens
            window = cfg.seq_len + int(objective.extra_token)
            batches = min(cfg.eval_batches, val_tokens // (window * cfg.batch_size * rt.world_size))
            if batches == 0:
                continue
            self.streams[category] = StreamingWindows(
                cfg.data, "val", seq_len=cfg.seq_len, extra_token=objective.extra_token,
                global_batch=cfg.batch_size * rt.world_size, rank=rt.rank, world_size=rt.world_size,
                seed=cfg.seed, weights={category: 1.0}, end_step=batches, readahead=2, verify=cfg.verify,
                verify_every_run=cfg.verify_every_run,
            )

    @torch.no_grad()
    def run(self, model: torch.nn.Module, objective: Objective, rt, autocast) -> dict[str, dict]:
        """{category: row, ..., "all": row} (see the module docstring for the row's fields)."""
        model.eval()
        results, overall = {}, Totals()
        for category, ds in self.streams.items():
            ds.start_step = 0
            totals = Totals()
            for batch in ds.batches():
                inputs = on_device(objective.batch(batch["tokens"], batch["sample_id"], batch["epoch"]), rt.device)
                with autocast:
                    loss, n, _ = objective.loss(model, inputs)
                totals.add(objective, self.pieces, inputs, float(loss), n)
            totals = Totals(*all_reduce_sum(rt, *totals.values()))
            overall = overall + totals
            results[category] = totals.row(objective)
        if overall.targets:
            results["all"] = overall.row(objective)
        model.train()
        return results
