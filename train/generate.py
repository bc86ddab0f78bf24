"""`strata generate RUN|DIR --prompt TEXT`: sampling from the GPT with a KV cache.

The prompt is encoded as a document start: EOS (the end of a previous document, which is
what precedes a document in training), then the prompt's ids. Each step feeds only the new
token; the cache holds every earlier position's keys and values. Decoding: temperature 0
is greedy; otherwise logits / temperature, then top-k, then top-p (the smallest set of
most likely tokens whose probability reaches p), sampled with a generator seeded by
`seed`, so the same seed gives the same text. Generation stops at EOS, after
max_new_tokens, or when the position table is full.
"""

from __future__ import annotations

import torch

from strata.train.gpt import GPT, KVCache


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
               generator: torch.Generator) -> int:
    """One token id from logits [vocab]."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        order = logits.argsort(descending=True)
        probs = logits[order].softmax(-1)
        outside = probs.cumsum(-1) - probs >= top_p  # tokens after the set reached top_p
        logits[order[outside]] = float("-inf")
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


@torch.no_grad()
def generate_ids(model: GPT, prompt: list[int], max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int = 0, eos: int | None = None,
                 use_cache: bool = True) -> list[int]:
    """The new token ids after `prompt`; without `use_cache` every step reruns the whole
    sequence (the reference the cache must equal)."""
    if not isinstance(model, GPT):
        raise ValueError(f"generate needs a causal (GPT) model; this one is {type(model).__name__}")
    if not prompt:
        raise ValueError("the prompt has no tokens")
    model.eval()
    room = model.config.seq_len - len(prompt)
    if room <= 0:
        raise ValueError(f"the prompt has {len(prompt)} tokens; the model holds {model.config.seq_len} positions")
    steps = min(max_new_tokens, room)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([prompt], device=device)
    cache = KVCache(model.config, 1, len(prompt) + steps, device=device) if use_cache else None
    logits = model(ids, cache=cache)[0][0, -1]
    new: list[int] = []
    for i in range(steps):
        token = next_token(logits.float().cpu(), temperature, top_k, top_p, generator)
        new.append(token)
        if token == eos or i == steps - 1:
            break
        if use_cache:
            logits = model(torch.tensor([[token]], device=device), cache=cache)[0][0, -1]
        else:
            logits = model(torch.tensor([prompt + new], device=device))[0][0, -1]
    return new


def prompt_ids(encoder, text: str) -> list[int]:
    """EOS, then the text's ids: a document start as the model saw them in training."""
    eos = encoder.special_ids["eos"]
    return ([eos] if eos is not None else []) + encoder.encode([text])[0]
