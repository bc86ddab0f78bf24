"""T5 span corruption and UL2's mixture of denoisers, against their papers' definitions."""

import numpy as np
import pytest
import torch

from objective_data import EOS, SENTINELS, SPECIALS, markov_windows, objective
from strata.config import ConfigError
from strata.train.objectives import IGNORE_INDEX
from strata.train.objectives.spans import noise_mask, random_segmentation
from strata.train.objectives.ul2 import MODES

FIRST, COUNT = SENTINELS


def _runs(mask):
    """Lengths of the runs of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def _reconstruct(source, target):
    """The window back from T5's source and target: each sentinel of the source replaced
    by what follows the same sentinel in the target."""
    spans, current = {}, None
    for t in target:
        if FIRST <= t < FIRST + COUNT:
            current = t
            spans[t] = []
        else:
            spans[current].append(t)
    return [x for s in source for x in (spans[s] if FIRST <= s < FIRST + COUNT else [s])]


def test_random_segmentation_cuts_into_non_empty_runs():
    rng = np.random.default_rng(0)
    for items, segments in [(10, 1), (10, 10), (100, 7)]:
        lengths = random_segmentation(items, segments, rng)
        assert len(lengths) == segments and lengths.sum() == items and lengths.min() >= 1


def test_noise_is_15_percent_in_spans_of_mean_length_3():
    rng = np.random.default_rng(1)
    masks = [noise_mask(512, 0.15, 3.0, rng) for _ in range(400)]
    spans = np.concatenate([_runs(m) for m in masks])
    assert len(spans) > 10_000
    assert spans.mean() == pytest.approx(3.0, rel=0.05)
    assert all(m.sum() == round(512 * 0.15) for m in masks)  # exactly, every window
    assert not any(m[0] for m in masks)  # T5 starts with a kept run
    lengths = np.bincount(spans)
    assert lengths[1] > 0 and lengths[6:].sum() > 0  # a spread of lengths, not all 3


def test_span_corruption_source_and_target():
    sc = objective("span_corruption")
    windows = markov_windows(300, 64, seed=2)
    for i, window in enumerate(windows):
        source, target = sc.example(window, i, 0)
        sentinels_in_source = source[(source >= FIRST) & (source < FIRST + COUNT)]
        assert sentinels_in_source.tolist() == list(range(FIRST, FIRST + len(sentinels_in_source)))  # in order
        assert target[(target >= FIRST) & (target < FIRST + COUNT)].tolist() == sentinels_in_source.tolist()
        assert target[0] == FIRST
        assert _reconstruct(source, target) == window.tolist()
        # specials are never corrupted: every EOS stays in the source, none is a target
        assert (source == EOS).sum() == (window == EOS).sum() and EOS not in target
        n = (window != EOS).sum()
        assert len(target) - len(sentinels_in_source) == round(n * 0.15)


def test_span_corruption_is_a_pure_function_of_seed_epoch_and_sample():
    sc, window = objective("span_corruption", seed=3), markov_windows(1, 64, seed=4)[0]
    a = sc.example(window, 7, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, sc.example(window.copy(), 7, 2)))
    for other in [(8, 2), (7, 3)]:
        assert not np.array_equal(a[1], sc.example(window, *other)[1])
    assert not np.array_equal(a[1], objective("span_corruption", seed=4).example(window, 7, 2)[1])


def test_encoder_decoder_and_decoder_only_inputs_hold_the_same_example():
    windows = torch.as_tensor(markov_windows(4, 64, seed=5))
    ids, epochs = torch.arange(4), torch.zeros(4, dtype=torch.long)
    seq2seq = objective("span_corruption").batch(windows, ids, epochs)
    lm = objective("span_corruption", decoder_only=True).batch(windows, ids, epochs)
    for b in range(4):
        source = seq2seq["idx"][b][seq2seq["segments"][b] == 0]
        target = seq2seq["targets"][b][seq2seq["targets"][b] != IGNORE_INDEX]
        assert seq2seq["decoder_idx"][b, 0] == SPECIALS["pad"]  # teacher forcing: shifted right
        assert torch.equal(seq2seq["decoder_idx"][b, 1 : len(target)], target[:-1])
        prefix = int(lm["prefix"][b])
        assert prefix == len(source) and torch.equal(lm["idx"][b, :prefix], source)
        assert torch.equal(lm["targets"][b][lm["targets"][b] != IGNORE_INDEX], target)
        assert (lm["targets"][b, : prefix - 1] == IGNORE_INDEX).all()  # no loss on the source
    assert objective("span_corruption").architecture == "t5"
    assert objective("span_corruption", decoder_only=True).architecture == "gpt"


def test_span_corruption_refuses_more_spans_than_sentinels():
    with pytest.raises(ConfigError, match="tokenizer.sentinels"):
        objective("span_corruption", seq_len=2048)  # 102 spans, 40 sentinels


def test_ul2_refuses_a_window_whose_extreme_denoiser_needs_more_sentinels():
    with pytest.raises(ConfigError, match="seq_len: 256 .* 43 spans.*40 sentinels"):
        objective("ul2", seq_len=256)  # X (mean 3, 50%): 43 spans
    assert objective("ul2", seq_len=256, ul2_mixture={"R": 1, "S": 1}).mixture[1] == 0  # R: 13 spans


# --------------------------------------------------------------------------- UL2


def test_ul2_realizes_its_mixture_and_tags_each_mode():
    ul2 = objective("ul2")  # the paper's seven denoisers, uniformly: R 2/7, X 4/7, S 1/7
    modes = np.array([ul2.mode(i, 0) for i in range(20_000)])
    shares = np.bincount(modes, minlength=3) / len(modes)
    assert shares == pytest.approx([2 / 7, 4 / 7, 1 / 7], abs=0.012)  # 3.5 standard errors
    custom = objective("ul2", ul2_mixture={"R": 1, "S": 1})
    assert np.bincount([custom.mode(i, 0) for i in range(4000)], minlength=3)[1] == 0  # X weight 0


def test_ul2_denoisers_follow_the_paper():
    ul2 = objective("ul2")
    windows = markov_windows(3000, 64, seed=6, doc_every=10**9)  # no EOS: rates over all 64 tokens
    rates = {m: [] for m in MODES}
    for i, window in enumerate(windows):
        mode = MODES[ul2.mode(i, 0)]
        source, target = ul2.example(window, i, 0)
        assert source[0] == SPECIALS[{"R": "mode_nlu", "X": "mode_nlg", "S": "mode_s2s"}[mode]]
        if mode == "S":  # prefix LM: the target continues the source
            assert source[1:].tolist() + target.tolist() == window.tolist() and len(target) >= 1
        else:
            assert _reconstruct(source[1:], target) == window.tolist()
            rates[mode].append((target >= FIRST + COUNT).sum() + ((target >= 5) & (target < FIRST)).sum())
    assert np.mean(rates["R"]) == pytest.approx(round(0.15 * 64))  # both R denoisers: 15%
    # X: 50%, 50%, 15%, 50% of the window, uniformly: (32 * 3 + 10) / 4
    assert np.mean(rates["X"]) == pytest.approx((32 * 3 + 10) / 4, rel=0.05)


def test_ul2_batches_report_the_realized_mixture():
    ul2 = objective("ul2")
    windows = torch.as_tensor(markov_windows(64, 64, seed=7))
    inputs = ul2.batch(windows, torch.arange(64), torch.zeros(64, dtype=torch.long))
    assert inputs["mode"].tolist() == [ul2.mode(i, 0) for i in range(64)]
    model = ul2.build_model("tiny", 100, 64)
    loss, n, mixture = ul2.loss(model, inputs)
    assert set(mixture) == {"ul2/R", "ul2/X", "ul2/S"} and sum(mixture.values()) == pytest.approx(1.0)
    assert mixture["ul2/R"] == (inputs["mode"] == 0).float().mean().item()
    assert n == (inputs["targets"] != IGNORE_INDEX).sum() and torch.isfinite(loss)
