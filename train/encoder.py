"""Bidirectional encoder with a masked-language-model head (BERT/RoBERTa shape).

    idx [B, L] -> token + learned position embeddings -> LayerNorm -> n_layer pre-LN blocks -> LayerNorm
               -> MLM head: dense, GELU, LayerNorm, then logits [B, L, vocab] through the
                  token-embedding matrix (tied) plus an output bias

The blocks are gpt.py's with `causal=False`. This is the definition of HF's
RoBERTa-PreLayerNorm (`RobertaPreLayerNormForMaskedLM`), to which train/export.py maps it
exactly. Differences from BERT, on purpose:
- pre-LN (LayerNorm before each sublayer, one after the last) instead of BERT's post-LN:
  it trains stably without a long warm-up at every depth, and it is the same block as
  the GPT's;
- no token-type embeddings and no pooler: RoBERTa's single-segment MLM needs neither.

With `segments` (document ids per position, as for the GPT) attention stays inside each
document of a packed window and positions restart at each document start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from strata.train.attention import positions_and_mask
from strata.train.gpt import ACTIVATIONS, IGNORE_INDEX, Block, GPTConfig, init_gpt2


@dataclass
class EncoderConfig(GPTConfig):
    """The GPT's fields, with BERT-base defaults."""

    vocab_size: int = 30522
    seq_len: int = 512


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.seq_len, config.n_embd),
            ln_e=nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, causal=False) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias),
        ))
        self.head = nn.Sequential(
            nn.Linear(config.n_embd, config.n_embd, bias=config.bias),
            nn.GELU(approximate=ACTIVATIONS[config.activation]),
            nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias),
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=True)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one matrix, one gradient
        init_gpt2(self, config.n_layer)

    def num_params(self) -> int:
        """Every parameter once (the tied matrix is counted once), position table included."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, segments: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets, segments: int64 [B, L]; targets are -100 except at the positions to
        predict (see objectives.mlm_mask). Returns logits [B, L, vocab] and, with targets,
        the mean cross-entropy over the labelled positions (else None)."""
        B, L = idx.shape
        assert L <= self.config.seq_len, f"window of {L} tokens, the model holds {self.config.seq_len}"
        pos, mask = positions_and_mask(idx, segments, causal=False)
        x = self.transformer.drop(self.transformer.ln_e(self.transformer.wte(idx) + self.transformer.wpe(pos)))
        for block in self.transformer.h:
            x = block(x, mask)
        logits = self.lm_head(self.head(self.transformer.ln_f(x)))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss
