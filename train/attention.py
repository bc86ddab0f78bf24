"""Attention structure as data: which key each query may see, built from per-position ids.

One function, `attention_mask`, composes the four structures the objectives need:

    fully visible    every query sees every key (BERT, the T5 encoder)
    causal           a query sees keys at or before it (GPT, every decoder)
    prefix           fully visible over the first `prefix[b]` positions, causal after
                     (T5/UL2 prefix LM; decoder-only span corruption)
    block-diagonal   a query sees only keys of its own segment (documents of a packed
                     window with --doc-mask; padding as a segment of its own)

An objective's batch function returns the data (segment ids, prefix lengths); the model
turns it into a mask on its device. `segments_from_eos` and `positions_from_segments`
give the segment ids of a packed window and positions that restart in each segment.
"""

from __future__ import annotations

import torch


def attention_mask(segments: torch.Tensor, *, causal: bool, prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Bool [B, 1, L, L], True where query i may attend to key j:

        same segment(i, j) and (not causal or j <= i or j < prefix[b])

    segments: int [B, L] (all zeros for one segment); prefix: int [B] or None. Every query
    sees itself, so no row is empty."""
    L = segments.shape[-1]
    mask = segments[:, :, None] == segments[:, None, :]
    if causal:
        visible = torch.ones(L, L, dtype=torch.bool, device=segments.device).tril()[None]
        if prefix is not None:
            keys = torch.arange(L, device=segments.device)
            visible = visible | (keys[None, None, :] < prefix[:, None, None])
        mask = mask & visible
    return mask[:, None]


def segments_from_eos(window, eos_id: int) -> torch.Tensor:
    """Document number of every position of a packed window [..., L]: a document is its
    tokens up to and including its EOS, and the next one starts right after. For CLM pass
    the inputs: an EOS position stays in its own document, so it still predicts the first
    token of the next document, as in unmasked packing."""
    eos = (torch.as_tensor(window) == eos_id).long()
    return eos.cumsum(-1) - eos


def positions_from_segments(segments: torch.Tensor) -> torch.Tensor:
    """Position of every token within its segment [..., L] -> [..., L]: 0 at each segment
    start (wherever the id changes), counting up to the next. Vectorized, on any device."""
    index = torch.arange(segments.shape[-1], device=segments.device).expand_as(segments)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[..., 1:] = segments[..., 1:] != segments[..., :-1]
    first = torch.where(starts, index, 0).cummax(-1).values
    return index - first


def positions_and_mask(
    idx: torch.Tensor, segments: torch.Tensor | None, *, causal: bool, prefix: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Positions [B or 1, L] and the mask (None: the plain causal or fully visible window,
    which lets attention use its fastest kernel) of a window idx [B, L]."""
    if segments is None and prefix is None:
        return torch.arange(idx.shape[1], device=idx.device)[None], None
    if segments is None:
        segments = torch.zeros_like(idx)
    return positions_from_segments(segments), attention_mask(segments, causal=causal, prefix=prefix)
