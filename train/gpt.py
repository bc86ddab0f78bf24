"""Decoder-only GPT (GPT-2 shape, after nanoGPT's model.py).

    idx [B, L] -> token + position embeddings -> n_layer pre-LN blocks -> LayerNorm
               -> logits [B, L, vocab] with the output matrix tied to the token embedding

Attention is `F.scaled_dot_product_attention`, so PyTorch picks the fused kernel for the
device and dtype. Plain windows (GPT-2 style: documents run into each other, positions
0..L-1) use `is_causal=True`. With `segments` (one document id per position, e.g. from
`attention.segments_from_eos`) attention stays inside each document and positions restart
at each document start, so a document reads the same whether it is packed or alone. With
`prefix` (a length per sample) the first prefix[b] positions are fully visible: the prefix
LM of T5 and UL2 (see attention.py). The explicit boolean mask either needs rules out the
flash kernel; the memory-efficient one still applies.

For generation, `forward(..., cache=KVCache(...))` keeps every layer's keys and values, so
each new token costs one position's work (plain mode only).

The model is GPT-2's definition (HF `GPT2LMHeadModel`): with `activation="gelu"` it is
GPT-2 with `activation_function="gelu"`, with "gelu_tanh" GPT-2's own "gelu_new"; the
LayerNorm epsilon is `norm_eps` (GPT-2: 1e-5). train/export.py maps the weights exactly.

`SelfAttention`, `MLP`, `Block` and `init_gpt2` are shared with encoder.py and t5.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from strata.train.attention import positions_and_mask

IGNORE_INDEX = -100  # label of positions the loss skips (F.cross_entropy's default)


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    seq_len: int = 1024  # longest window; the size of the position table
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm, as GPT-2 has
    activation: str = "gelu"  # "gelu" (exact, erf) or "gelu_tanh" (GPT-2's tanh approximation)
    norm_eps: float = 1e-5  # LayerNorm epsilon


ACTIVATIONS = {"gelu": "none", "gelu_tanh": "tanh"}  # -> nn.GELU(approximate=...)


class LayerCache:
    """One layer's keys and values [B, H, capacity, D], filled up to `length`."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor):
        self.k, self.v, self.length = k, v, 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new positions' k, v [B, H, L, D]; returns all so far (views)."""
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"the cache holds {self.k.shape[2]} positions, {end} asked for")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """Keys and values of every layer for up to `capacity` positions, allocated once."""

    def __init__(self, config: "GPTConfig", batch: int, capacity: int, device=None, dtype=torch.float32):
        shape = (batch, config.n_head, capacity, config.n_embd // config.n_head)
        self.layers = [LayerCache(torch.empty(shape, device=device, dtype=dtype), torch.empty(shape, device=device, dtype=dtype))
                       for _ in range(config.n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length


class SelfAttention(nn.Module):
    """Multi-head self-attention; `causal` for a decoder, not for an encoder."""

    def __init__(self, config: GPTConfig, causal: bool):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.causal = causal

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """`mask`: None, or bool [B, 1, L, L], True where a query may attend to a key (it
        then carries causality itself). `context` [B, L, C]: the stream keys and values come
        from, queries still from `x` (XLNet's query stream); default `x` itself. `cache`:
        earlier positions' keys and values, to which this call's are added (causal, no mask)."""
        B, L, C = x.shape
        if context is None:
            q, k, v = self.c_attn(x).split(C, dim=2)
        else:  # the same projections, queries from x, keys and values from the context
            q = F.linear(x, self.c_attn.weight[:C], None if self.c_attn.bias is None else self.c_attn.bias[:C])
            k, v = F.linear(context, self.c_attn.weight[C:], None if self.c_attn.bias is None else self.c_attn.bias[C:]).split(C, dim=2)
        q, k, v = (t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        causal = self.causal and mask is None
        if cache is not None:
            past = cache.length
            k, v = cache.append(k, v)
            if past and L > 1:  # queries see every cached key and the new ones up to their own
                mask = torch.ones(L, past + L, dtype=torch.bool, device=x.device).tril(diagonal=past)
            causal = causal and not past
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=causal,
        )
        y = y.transpose(1, 2).contiguous().view(B, L, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=ACTIVATIONS[config.activation])
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, causal: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.attn = SelfAttention(config, causal)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """`context`: the stream to attend to instead of x itself (see SelfAttention)."""
        x = x + self.attn(self.ln_1(x), mask, None if context is None else self.ln_1(context), cache)
        return x + self.mlp(self.ln_2(x))


def init_gpt2(model: nn.Module, n_layer: int) -> None:
    """GPT-2 init: N(0, 0.02) for Linear and Embedding weights, zero biases, and the
    projections that write into the residual stream (`c_proj`) scaled by 1/sqrt(2 n_layer),
    since each of the 2 n_layer sublayers adds to the same stream."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.seq_len, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, causal=True) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one matrix, one gradient
        init_gpt2(self, config.n_layer)

    def num_params(self) -> int:
        """Every parameter once (the tied matrix is counted once), position table included."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        prefix: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets, segments: int64 [B, L]; prefix: int64 [B] (fully visible positions).
        Returns logits [B, L, vocab] and, with targets, the mean cross-entropy over
        targets != -100 (else None). With `cache`, idx continues the positions it holds."""
        B, L = idx.shape
        start = cache.length if cache is not None else 0
        assert start + L <= self.config.seq_len, f"window of {start + L} tokens, the model holds {self.config.seq_len}"
        if cache is None:
            pos, mask = positions_and_mask(idx, segments, causal=True, prefix=prefix)
        else:
            assert segments is None and prefix is None, "the KV cache decodes plain windows"
            pos, mask = torch.arange(start, start + L, device=idx.device), None
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        layers = cache.layers if cache is not None else [None] * len(self.transformer.h)
        for block, layer in zip(self.transformer.h, layers):
            x = block(x, mask, cache=layer)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss
