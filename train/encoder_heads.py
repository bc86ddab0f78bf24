"""Heads that encoder objectives put beside the MLM head, and the models they make.

    SpanBERT      the encoder + the span boundary objective's head (Joshi et al., 2020,
                  section 3.2): every token x_i of a masked span s..e is predicted from the
                  boundary tokens' final states and its place in the span,
                  y_i = f(h_{s-1}, h_{e+1}, p_{i-s}), f two Linear-GELU-LayerNorm layers,
                  through the MLM output embedding; loss = MLM + SBO (SBO switchable)
    PairEncoder   the encoder with token types + BERT's pooler (dense + tanh on [CLS]) and
                  a two-way classifier: NSP or SOP beside MLM; loss = MLM + pair loss

Both return (loss, extras) from forward, so a DDP-wrapped model is called as usual.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dataclasses import dataclass

from strata.train.encoder import Encoder, EncoderConfig
from strata.train.gpt import IGNORE_INDEX


@dataclass
class SpanBERTConfig(EncoderConfig):
    sbo: bool = True  # the span boundary head beside the MLM head


@dataclass
class PairEncoderConfig(EncoderConfig):
    type_vocab_size: int = 2  # segment A and segment B


class SpanBoundaryHead(nn.Module):
    """SBO's f: [h_left; h_right; p_offset] -> Linear, GELU, LayerNorm -> Linear, GELU,
    LayerNorm -> a state the MLM output layer turns into logits."""

    def __init__(self, n_embd: int, max_offset: int):
        super().__init__()
        self.offset = nn.Embedding(max_offset, n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(3 * n_embd, n_embd), nn.GELU(), nn.LayerNorm(n_embd),
            nn.Linear(n_embd, n_embd), nn.GELU(), nn.LayerNorm(n_embd),
        )

    def forward(self, hidden: torch.Tensor, left: torch.Tensor, right: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """hidden [B, L, C]; left, right, offset [N] for N (batch, position) pairs flattened
        -> [N, C]. left and right index the flattened [B*L] positions."""
        flat = hidden.reshape(-1, hidden.size(-1))
        return self.mlp(torch.cat([flat[left], flat[right], self.offset(offset)], dim=-1))


class SpanBERT(nn.Module):
    """The encoder (what downstream tasks use) plus the SBO head when `sbo`."""

    def __init__(self, config: SpanBERTConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.sbo = SpanBoundaryHead(config.n_embd, config.seq_len) if config.sbo else None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                offset: torch.Tensor, segments: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (MLM + SBO loss, {"mlm_loss", "sbo_loss"}), means over the labelled tokens."""
        hidden = self.encoder.hidden(idx, segments)
        flat_labels = targets.reshape(-1)
        chosen = flat_labels != IGNORE_INDEX
        mlm = F.cross_entropy(self.encoder.mlm_logits(hidden).reshape(-1, self.encoder.config.vocab_size), flat_labels,
                              ignore_index=IGNORE_INDEX)
        if self.sbo is None:
            return mlm, {"mlm_loss": mlm.detach()}
        base = (torch.arange(targets.size(0), device=targets.device) * targets.size(1))[:, None].expand_as(targets).reshape(-1)
        states = self.sbo(hidden, (left.reshape(-1) + base)[chosen], (right.reshape(-1) + base)[chosen],
                          offset.reshape(-1)[chosen])
        sbo = F.cross_entropy(self.encoder.lm_head(states), flat_labels[chosen], reduction="sum") / chosen.sum().clamp(min=1)
        return mlm + sbo, {"mlm_loss": mlm.detach(), "sbo_loss": sbo.detach()}


class PairEncoder(nn.Module):
    """The encoder (built with type_vocab_size=2), BERT's pooler and the pair classifier."""

    def __init__(self, config: PairEncoderConfig):
        super().__init__()
        assert config.type_vocab_size >= 2, "sentence pairs need token-type embeddings"
        self.config = config
        self.encoder = Encoder(config)
        n = config.n_embd
        self.pooler = nn.Sequential(nn.Linear(n, n), nn.Tanh())
        self.classifier = nn.Linear(n, 2)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor, token_types: torch.Tensor, segments: torch.Tensor,
                pair_label: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (MLM loss + pair loss, {"mlm_loss", "pair_loss", "pair_accuracy"})."""
        hidden = self.encoder.hidden(idx, segments, token_types)
        logits = self.encoder.mlm_logits(hidden)
        mlm = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        pair_logits = self.classifier(self.pooler(hidden[:, 0]))
        labelled = pair_label != IGNORE_INDEX
        pair = F.cross_entropy(pair_logits, pair_label, ignore_index=IGNORE_INDEX, reduction="sum") / labelled.sum().clamp(min=1)
        correct = (pair_logits.argmax(-1) == pair_label) & labelled
        accuracy = correct.sum() / labelled.sum().clamp(min=1)
        return mlm + pair, {"mlm_loss": mlm.detach(), "pair_loss": pair.detach(), "pair_accuracy": accuracy.detach()}
