"""Encoder-decoder transformer (T5 shape: Raffel et al. 2020), for the denoising objectives.

    idx [B, Le] -> token + position embeddings -> LayerNorm -> n_layer encoder blocks
                (fully visible) -> LayerNorm = memory [B, Le, C]
    decoder_idx [B, Ld] -> token + position embeddings -> LayerNorm -> n_layer decoder
                blocks, each: causal self-attention, cross-attention to the memory, MLP
                -> LayerNorm -> logits [B, Ld, vocab] through the token embedding (tied)

The encoder blocks are gpt.py's `Block` with `causal=False`; the decoder block adds
cross-attention between gpt.py's self-attention and MLP. One embedding matrix serves the
encoder, the decoder and the output, as in T5. Pre-LN and GPT-2 init as gpt.py.

Positions: learned absolute embeddings, one table for the encoder and one for the
decoder (as BART), not T5's relative position bias. Windows have a fixed length, so the
bias's advantage (lengths never seen in training) does not arise; absolute positions
keep the shared blocks and PyTorch's fused attention kernels (a per-head float bias would
rule the fused kernels out on every step), and the model stays a page long.

The layout is mBART's (`MBartForConditionalGeneration`: pre-LN BART), to which
train/hf_seq2seq.py maps it weight for weight: learned positions per side, a LayerNorm on
each side's embeddings (`ln_e`, mBART's `layernorm_embedding`; added for that mapping, as
the encoder's), a final LayerNorm per side, unscaled tied embeddings. Every LayerNorm has
epsilon `norm_eps` (mBART's are fixed at 1e-5).

Teacher forcing: the decoder reads the target shifted right by one (objectives/examples.py)
and predicts every target token in one pass. `segments` marks the encoder's padding
(-1): no query attends to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from strata.train.attention import attention_mask
from strata.train.gpt import IGNORE_INDEX, MLP, Block, GPTConfig, SelfAttention, init_gpt2


@dataclass
class T5Config(GPTConfig):
    """n_layer blocks in the encoder and as many in the decoder; seq_len bounds both."""

    vocab_size: int = 32128
    seq_len: int = 512
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 512


class CrossAttention(nn.Module):
    """Queries from the decoder, keys and values from the encoder's memory."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.q_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.kv_proj = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.dropout = config.n_head, config.dropout

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, Ld, C = x.shape
        heads = lambda t: t.view(B, -1, self.n_head, C // self.n_head).transpose(1, 2)  # noqa: E731
        q = heads(self.q_proj(x))
        k, v = (heads(t) for t in self.kv_proj(memory).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, Ld, C)))


class DecoderBlock(nn.Module):
    """Pre-LN: x + self_attn(ln(x)), x + cross_attn(ln(x), memory), x + mlp(ln(x))."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.attn = SelfAttention(config, causal=True)
        self.ln_cross = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.cross = CrossAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.cross(self.ln_cross(x), memory, memory_mask)
        return x + self.mlp(self.ln_2(x))


def _stack(config: T5Config, blocks: list[nn.Module]) -> nn.ModuleDict:
    """One side: its position table, embedding LayerNorm, blocks and final LayerNorm."""
    layer_norm = lambda: nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)  # noqa: E731
    return nn.ModuleDict(dict(wpe=nn.Embedding(config.seq_len, config.n_embd), ln_e=layer_norm(),
                              drop=nn.Dropout(config.dropout), h=nn.ModuleList(blocks), ln_f=layer_norm()))


class T5(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.encoder = _stack(config, [Block(config, causal=False) for _ in range(config.n_layer)])
        self.decoder = _stack(config, [DecoderBlock(config) for _ in range(config.n_layer)])
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # tied: one matrix, one gradient
        init_gpt2(self, 2 * config.n_layer)

    def num_params(self) -> int:
        """Every parameter once (the tied matrix is counted once), position tables included."""
        return sum(p.numel() for p in self.parameters())

    def encode(self, idx: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """idx [B, Le] -> memory [B, Le, C]; segments: -1 on padding (else any id)."""
        assert idx.shape[1] <= self.config.seq_len, f"source of {idx.shape[1]} tokens, the model holds {self.config.seq_len}"
        pos = torch.arange(idx.shape[1], device=idx.device)
        mask = None if segments is None else attention_mask(segments, causal=False)
        x = self.encoder.drop(self.encoder.ln_e(self.wte(idx) + self.encoder.wpe(pos)))
        for block in self.encoder.h:
            x = block(x, mask)
        return self.encoder.ln_f(x)

    def decode(self, decoder_idx: torch.Tensor, memory: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """decoder_idx [B, Ld] and the memory -> logits [B, Ld, vocab]."""
        assert decoder_idx.shape[1] <= self.config.seq_len, f"target of {decoder_idx.shape[1]} tokens, the model holds {self.config.seq_len}"
        pos = torch.arange(decoder_idx.shape[1], device=decoder_idx.device)
        memory_mask = None if segments is None else (segments != -1)[:, None, None, :]
        x = self.decoder.drop(self.decoder.ln_e(self.wte(decoder_idx) + self.decoder.wpe(pos)))
        for block in self.decoder.h:
            x = block(x, memory, memory_mask)
        return self.lm_head(self.decoder.ln_f(x))

    def forward(
        self,
        idx: torch.Tensor,
        decoder_idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits [B, Ld, vocab] and, with targets [B, Ld], the mean cross-entropy over
        targets != -100 (else None)."""
        logits = self.decode(decoder_idx, self.encode(idx, segments), segments)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss
