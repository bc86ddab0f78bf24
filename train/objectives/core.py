"""What every objective is: a pure batch function, the model it trains, and its loss.

    objective = objective_for(name, cfg, Vocabulary.of(tokenizer, pieces))   (registry.py)
    model     = objective.build_model(preset, vocab_size, seq_len, dropout=...)
    inputs    = objective.batch(tokens [B, L(+1)], sample_id [B], epoch [B])
                -> dict of CPU tensors: the model's keyword arguments (idx, targets,
                   segments, prefix, decoder_idx, ...), `targets` being what the loss
                   predicts (-100 where nothing is predicted)
    loss, n, extras = objective.loss(model, inputs on the device)
                -> mean loss over the n targets, and extras: more means of the batch
                   (UL2's realized mode mixture, ...) for the metrics

`batch` is pure: any randomness comes from `sample_rng(seed, epoch, sample_id)`, so a
sample gets the same corruption on any number of workers, resumed or not, in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from strata.config import ConfigError
from strata.tokenize.pieces import PieceTable
from strata.train.attention import segments_from_eos
from strata.train.gpt import IGNORE_INDEX
from strata.train.presets import build_model

Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Vocabulary:
    """What an objective knows of the tokenizer: its ids, which of them are special
    (name -> id or None; sentinels -> [ids]), and the text of its pieces for the
    objectives that read words or sentences (None: the build was copied without its model)."""

    vocab_size: int
    special_ids: dict[str, Any]
    pieces: PieceTable | None = None

    @classmethod
    def of(cls, tokenizer, pieces: PieceTable | None = None) -> "Vocabulary":
        """From the manifest's TokenizerEntry or an encoder (both have vocab_size and special_ids)."""
        return cls(tokenizer.vocab_size, tokenizer.special_ids, pieces)


class Objective:
    """Subclasses set the class attributes and `batch`; `loss` calls the model with the
    batch as keyword arguments and returns its mean over the targets."""

    name: ClassVar[str]
    architecture: ClassVar[str]  # presets.build_model: gpt | encoder | t5
    extra_token: ClassVar[bool] = False  # windows of seq_len + 1 tokens (CLM's shifted targets)
    needs: ClassVar[tuple[str, ...]] = ()  # keys of the tokenizer's special_ids it uses
    bits_per_byte: ClassVar[bool] = True  # its loss is a likelihood of the target tokens
    words: ClassVar[bool] = False  # targets are running text: perplexity per word too

    def __init__(self, cfg, tokenizer: Vocabulary):
        """cfg: the TrainConfig (seed and this objective's options)."""
        self.seed = cfg.seed
        self.doc_mask = cfg.doc_mask
        self.vocab_size = tokenizer.vocab_size
        self.specials = tokenizer.special_ids
        missing = [key for key in ("eos", *self.needs) if self.specials.get(key) is None]
        if missing:
            raise ConfigError(
                f"objective: {self.name} needs the special tokens {missing}, which the build's tokenizer lacks; "
                "rebuild with `tokenizer.objective_specials: true` in the build config"
            )

    def build_model(self, preset: str, vocab_size: int, seq_len: int, **overrides) -> torch.nn.Module:
        """The model for windows of seq_len tokens (its position table: model_len)."""
        return build_model(self.architecture, preset, vocab_size, self.model_len(seq_len), **overrides)

    def model_len(self, seq_len: int) -> int:
        """The longest sequence the model reads, for windows of seq_len tokens."""
        return seq_len

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        raise NotImplementedError

    def num_targets(self, inputs: Inputs) -> int:
        return int((inputs["targets"] != IGNORE_INDEX).sum())

    def loss(self, model, inputs: Inputs) -> tuple[torch.Tensor, int, dict[str, float]]:
        _, loss = model(**inputs)
        return loss, self.num_targets(inputs), {}

    def exports(self, model: torch.nn.Module) -> dict[str, dict]:
        """State dicts each checkpoint saves beside the model, for downstream use."""
        return {}

    def with_segments(self, inputs: Inputs) -> Inputs:
        """With --doc-mask, the document ids of the window `idx` (attention.py)."""
        if self.doc_mask:
            inputs["segments"] = segments_from_eos(inputs["idx"], self.specials["eos"])
        return inputs

    def control_ids(self) -> list[int]:
        """Tokens no objective corrupts or picks: pad, unk, bos, eos, mask and every
        objective special (user-defined symbols of the data stay ordinary tokens)."""
        return sorted(i for i in special_id_list(self.specials) if i is not None)


class JointObjective(Objective):
    """An objective whose model adds two losses (MLM and a second head, or a generator and
    a discriminator): the model returns (loss, its parts), and the parts are the extras."""

    def loss(self, model, inputs: Inputs) -> tuple[torch.Tensor, int, dict[str, float]]:
        loss, parts = model(**inputs)
        return loss, self.num_targets(inputs), parts


def special_id_list(specials: dict) -> list[int]:
    """Every id in a special_ids record: plain ids, and [first, count] ranges (sentinels)."""
    ids = []
    for value in specials.values():
        if isinstance(value, list):
            ids.extend(range(value[0], value[0] + value[1]))
        elif value is not None:
            ids.append(value)
    return ids


def sample_rng(seed: int, epoch: int, sample_id: int, *stream: int) -> np.random.Generator:
    """The generator of one sample's randomness (`stream` separates independent draws)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, sample_id, *stream])))


def per_sample(sample: Callable[..., dict], tokens, sample_id, epoch, **options) -> Inputs:
    """A batch from a per-sample function: row i is sample(tokens[i], sample_id=sample_id[i],
    epoch=epoch[i], **options), whatever else is in the batch; its dict's values (arrays or
    numbers) are stacked into tensors of their dtype under the same keys."""
    ids, epochs = torch.as_tensor(sample_id).tolist(), torch.as_tensor(epoch).tolist()
    rows = [sample(row, sample_id=i, epoch=e, **options) for row, i, e in zip(as_numpy(tokens), ids, epochs)]
    return {key: torch.from_numpy(np.stack([np.asarray(r[key]) for r in rows])) for key in rows[0]}


def as_numpy(tokens) -> np.ndarray:
    return np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens).astype(np.int64)


def unigram_entropy(tokens) -> float:
    """Entropy in nats of the token frequencies of a stream: the loss of the best model that
    ignores context, so a model that learns anything from context must go below it."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64).ravel())
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
