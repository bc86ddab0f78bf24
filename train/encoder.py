"""Bidirectional encoder with a masked-language-model head (BERT/RoBERTa shape).

    idx [B, L] -> token + learned position embeddings -> LayerNorm -> n_layer pre-LN blocks -> LayerNorm
               -> MLM head: dense, GELU, LayerNorm, then logits [B, L, vocab] through the
                  token-embedding matrix (tied) plus an output bias

`EncoderStack` (embeddings, blocks, final LayerNorm) is what other encoder models
reuse (ELECTRA's discriminator, XLNet, the heads of encoder_heads.py). The blocks are
gpt.py's with `causal=False`. Differences from BERT, on purpose:
- pre-LN (LayerNorm before each sublayer, one after the last) instead of BERT's post-LN:
  it trains stably without a long warm-up at every depth, and it is the same block as
  the GPT's; with a LayerNorm on the embeddings, as RoBERTa-PreLayerNorm
  (`RobertaPreLayerNormForMaskedLM`), to which train/export.py maps the MLM model exactly;
- no token-type embeddings (unless `type_vocab_size`, for NSP/SOP) and no pooler (the
  sentence-pair head has its own, train/encoder_heads.py): RoBERTa's single-segment MLM
  needs neither.

`post_ln` gives the stack BERT's post-LN layout instead (`PostLNBlock`: LayerNorm after
each residual sum, none after the last block): ELECTRA's (train/electra.py), so that its
networks map weight for weight onto transformers' ELECTRA classes (train/hf_electra.py).

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
    """The GPT's fields, with BERT-base defaults; `type_vocab_size` > 0 adds BERT's
    token-type (segment A/B) embeddings, for sentence-pair objectives."""

    vocab_size: int = 30522
    seq_len: int = 512
    type_vocab_size: int = 0
    post_ln: bool = False  # BERT's post-LN blocks (PostLNBlock) and no final LayerNorm


class PostLNBlock(Block):
    """BERT's block: x = ln_1(x + attn(x)), then x = ln_2(x + mlp(x)); a Block's modules."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.ln_1(x + self.attn(x, mask))
        return self.ln_2(x + self.mlp(x))


def encoder_blocks(config: EncoderConfig) -> nn.ModuleList:
    """n_layer bidirectional blocks, pre-LN or (`post_ln`) post-LN."""
    block = PostLNBlock if config.post_ln else Block
    return nn.ModuleList([block(config, causal=False) for _ in range(config.n_layer)])


def final_norm(config: EncoderConfig) -> nn.Module:
    """The LayerNorm after the last pre-LN block; a post-LN block ends with its own."""
    return nn.Identity() if config.post_ln else nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


class EncoderStack(nn.Module):
    """Embeddings, bidirectional blocks and the final LayerNorm: idx -> hidden states
    [B, L, n_embd]. Every encoder objective puts its heads on this."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.seq_len, config.n_embd)
        self.wtt = nn.Embedding(config.type_vocab_size, config.n_embd) if config.type_vocab_size else None
        self.ln_e = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)
        self.h = encoder_blocks(config)
        self.ln_f = final_norm(config)
        self.seq_len = config.seq_len

    def embed(
        self, idx: torch.Tensor, segments: torch.Tensor | None = None, token_types: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(embeddings [B, L, n_embd], attention mask or None) of a batch of windows."""
        L = idx.shape[1]
        assert L <= self.seq_len, f"window of {L} tokens, the model holds {self.seq_len}"
        pos, mask = positions_and_mask(idx, segments, causal=False)
        x = self.wte(idx) + self.wpe(pos)
        if self.wtt is not None:
            x = x + self.wtt(torch.zeros_like(idx) if token_types is None else token_types)
        return self.drop(self.ln_e(x)), mask

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.h:
            x = block(x, mask)
        return self.ln_f(x)

    def forward(
        self, idx: torch.Tensor, segments: torch.Tensor | None = None, token_types: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.encode(*self.embed(idx, segments, token_types))


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.transformer = EncoderStack(config)
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

    def hidden(
        self, idx: torch.Tensor, segments: torch.Tensor | None = None, token_types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The final hidden states [B, L, n_embd], for heads other than the MLM one."""
        return self.transformer(idx, segments, token_types)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.head(hidden))

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, segments: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets, segments: int64 [B, L]; targets are -100 except at the positions to
        predict (see objectives.mlm_mask). Returns logits [B, L, vocab] and, with targets,
        the mean cross-entropy over the labelled positions (else None)."""
        logits = self.mlm_logits(self.hidden(idx, segments))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss
