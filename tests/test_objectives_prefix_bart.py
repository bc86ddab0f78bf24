"""Prefix LM and BART's denoising, against their papers' definitions."""

import math

import numpy as np
import pytest
import torch

from objective_data import EOS, MASK, PERIOD, markov_windows, objective
from strata.train.objectives import IGNORE_INDEX
from strata.train.objectives.bart import infill, permute_sentences, poisson_spans

# --------------------------------------------------------------------------- prefix LM


def test_prefix_lm_split_is_uniform_and_the_loss_is_on_the_continuation_only():
    lm = objective("prefix_lm")
    windows = torch.as_tensor(markov_windows(4000, 65, seed=1))
    inputs = lm.batch(windows, torch.arange(4000), torch.zeros(4000, dtype=torch.long))
    assert inputs["idx"].shape == inputs["targets"].shape == (4000, 64)
    assert torch.equal(inputs["idx"], windows[:, :-1])  # the window, as for CLM
    prefix = inputs["prefix"]
    assert prefix.min() == 1 and prefix.max() == 64
    counts = torch.bincount(prefix, minlength=65)[1:].float()
    assert counts.std() / counts.mean() < 0.25 and counts.mean() == 4000 / 64  # uniform over 1..64
    for b in range(0, 4000, 97):
        s = int(prefix[b])
        assert (inputs["targets"][b, : s - 1] == IGNORE_INDEX).all()
        assert torch.equal(inputs["targets"][b, s - 1 :], windows[b, s:])  # predict the continuation


def test_prefix_lm_document_split_starts_the_continuation_at_a_document():
    lm = objective("prefix_lm", prefix_split="document")
    windows = markov_windows(500, 65, seed=2, doc_every=20)
    for i, window in enumerate(windows):
        source, target = lm.example(window, i, 0)
        starts = np.flatnonzero(window[:-1] == EOS) + 1
        assert len(source) in starts if starts.size else 1 <= len(source) <= 64
        assert source.tolist() + target.tolist() == window.tolist()


def test_prefix_lm_composes_with_document_masking():
    inputs = objective("prefix_lm", doc_mask=True).batch(torch.tensor([[7, 8, EOS, 9, 10, 11]]), [0], [0])
    assert inputs["segments"].tolist() == [[0, 0, 0, 1, 1]]


# --------------------------------------------------------------------------- BART


def test_poisson_span_lengths_have_mean_3_and_cover_the_budget_exactly():
    rng = np.random.default_rng(0)
    draws = [poisson_spans(budget, 3.0, rng) for budget in rng.integers(1, 400, size=600)]
    assert all(len(d) and d.min() >= 0 for d in draws)
    whole = np.concatenate([d[:-1] for d in draws])  # the last span of each is cut to fit
    assert len(whole) > 10_000
    assert whole.mean() == pytest.approx(3.0, rel=0.05)
    assert (whole == 0).mean() == pytest.approx(math.exp(-3), abs=0.006)  # 0-length spans: insert a mask
    assert poisson_spans(0, 3.0, rng).size == 0


def test_text_infilling_masks_30_percent_with_one_mask_per_span():
    bart = objective("bart", bart_permute=False)
    windows = markov_windows(2000, 64, seed=3)
    masked = candidates = spans = 0
    for i, window in enumerate(windows):
        source, target = bart.example(window, i, 0)
        assert np.array_equal(target, window)  # reconstruct the original
        keep = window != EOS
        n = int(keep.sum())
        masks = int((source == MASK).sum())
        assert (source == EOS).sum() == (window == EOS).sum()  # specials are never masked
        assert len(source) == len(window) - round(0.3 * n) + masks  # each span -> one mask
        # the kept tokens are the window's, in order
        kept = source[source != MASK]
        it = iter(window.tolist())
        assert all(any(t == w for w in it) for t in kept.tolist())
        masked += round(0.3 * n)
        candidates += n
        spans += masks
    assert masked / candidates == pytest.approx(0.3, abs=0.005)
    # about 19 masked tokens a window: ~6.3 Poisson(3) spans, the last one cut to fit, so a
    # mask stands for a little under 3 tokens (renewal theory: 19 / (19/3 + 2/3) = 2.7)
    assert 2.6 < masked / spans < 3.0


def test_infill_places_spans_apart_and_zero_length_spans_insert_a_mask():
    rng = np.random.default_rng(4)
    window = np.arange(10, 30)
    source = infill(window, np.arange(20), np.array([0, 0, 0]), MASK, rng)
    assert (source == MASK).sum() == 3 and np.array_equal(source[source != MASK], window)
    first_token_masked = 0
    for _ in range(2000):
        source = infill(window, np.arange(20), np.array([5]), MASK, rng)
        first = int(np.flatnonzero(source == MASK)[0])
        assert np.array_equal(np.delete(source, first), np.delete(window, range(first, first + 5)))
        first_token_masked += first == 0
    assert first_token_masked / 2000 == pytest.approx(1 / 16, abs=0.02)  # 16 places for a span of 5 in 20


def test_sentence_permutation_shuffles_whole_sentences_inside_each_document():
    rng = np.random.default_rng(5)
    window = np.array([10, 11, PERIOD, 12, PERIOD, 13, 14, 15, PERIOD, EOS, 20, 21, PERIOD, 22, PERIOD])
    ends = window == PERIOD
    sentences = [(10, 11, PERIOD), (12, PERIOD), (13, 14, 15, PERIOD)]
    seen = set()
    for _ in range(200):
        out = permute_sentences(window, ends, EOS, rng)
        assert out[9] == EOS  # the document's EOS stays last, its sentences stay in it
        first = [tuple(out[a:b]) for a, b in _sentence_bounds(out[:9])]
        assert sorted(first) == sorted(sentences)
        assert sorted(tuple(out[10:][a:b]) for a, b in _sentence_bounds(out[10:])) == [(20, 21, PERIOD), (22, PERIOD)]
        seen.add(tuple(first))
    assert len(seen) == 6  # every order of three sentences


def _sentence_bounds(tokens):
    ends = np.flatnonzero(tokens == PERIOD) + 1
    return zip(np.concatenate([[0], ends[:-1]]), ends)


def test_bart_is_pure_and_permutes_before_infilling():
    bart = objective("bart")
    window = markov_windows(1, 64, seed=6)[0]
    window[[10, 30, 50]] = PERIOD
    a = bart.example(window, 3, 1)
    assert np.array_equal(a[0], bart.example(window.copy(), 3, 1)[0])
    assert not np.array_equal(a[0], bart.example(window, 3, 2)[0])
    assert np.array_equal(a[1], window) and bart.architecture == "t5"
