"""XLNet (Yang et al., 2019): permutation language modelling with two-stream attention.

    idx [B, L], rank [B, L] (objectives/permutation.py) ->
        content stream h = token + position embedding   (sees its own token)
        query stream   g = w + position embedding        (w: one learned vector; knows the
                                                          position to predict, not its token)
    n_layer times, with one set of weights for both streams:
        h <- Block(h, attending to h where rank_key <= rank_query)
        g <- Block(g, attending to h where rank_key <  rank_query)
    -> LayerNorm -> logits at the predicted positions from g, through the tied embedding

So the prediction of the token at position t is built from the tokens earlier in the
factorization order only, at every depth: h of an earlier position never saw anything
later in the order, and g never sees its own position's content.

The embeddings and blocks are encoder.py's stack (gpt.py's `Block`, with `context=` for
the query stream), used one block at a time. Positions are learned absolute embeddings,
as in the GPT, instead of Transformer-XL's relative encoding
with segment recurrence: windows are independent samples here, so there is no memory to
carry, and one position table keeps the file as small as its siblings. A query row that
is not predicted may see nothing (the first in the order); it then attends to itself in
its content, harmlessly, since nothing reads a query state but its own prediction.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from strata.train.encoder import EncoderConfig, EncoderStack
from strata.train.gpt import IGNORE_INDEX, init_gpt2


def two_stream_masks(rank: torch.Tensor, predicted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(content mask, query mask), bool [B, 1, L, L] (query row, key column), from the
    factorization order rank [B, L] and the predicted positions [B, L]."""
    earlier_or_self = rank[:, None, :] <= rank[:, :, None]
    earlier = rank[:, None, :] < rank[:, :, None]
    query = earlier | (earlier_or_self & ~predicted[:, :, None])  # a row that is not predicted: anything non-empty
    return earlier_or_self[:, None], query[:, None]


class XLNet(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.transformer = EncoderStack(config)  # embeddings, bidirectional blocks, final LayerNorm
        self.query = nn.Parameter(torch.zeros(config.n_embd))  # w: the query stream's input
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied
        init_gpt2(self, config.n_layer)
        nn.init.normal_(self.query, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, rank: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """idx, rank, targets: int64 [B, L]; targets are -100 except at the predicted
        positions. Returns (logits [N, vocab] of the N predicted positions in row-major
        order, mean cross-entropy over them)."""
        B, L = idx.shape
        assert L <= self.config.seq_len, f"window of {L} tokens, the model holds {self.config.seq_len}"
        predicted = targets != IGNORE_INDEX
        content_mask, query_mask = two_stream_masks(rank, predicted)
        pos = self.transformer.wpe(torch.arange(L, device=idx.device))
        h = self.transformer.drop(self.transformer.wte(idx) + pos)
        g = self.transformer.drop(self.query + pos).expand(B, L, -1)
        for block in self.transformer.h:
            h, g = block(h, content_mask), block(g, query_mask, context=h)
        logits = self.lm_head(self.transformer.ln_f(g[predicted]))
        return logits, F.cross_entropy(logits, targets[predicted])
