"""Whole-word MLM and SpanBERT masking against their papers' definitions (pure functions,
no model)."""

import numpy as np
import pytest

from strata.tokenize.pieces import PieceTable
from strata.train.objectives import IGNORE_INDEX
from strata.train.objectives.spanbert import MAX_SPAN_WORDS, span_length_probs, spanbert_mask
from strata.train.objectives.whole_words import whole_word_mask, word_ids, word_starts

VOCAB = 100
SPECIALS = {0, 1, 2, 3}
MASK = 4
ALL_SPECIAL = np.array(sorted(SPECIALS | {MASK}))
WORD_START = (np.arange(VOCAB) >= 5) & (np.arange(VOCAB) % 3 != 0)  # two in three pieces start a word
ARGS = dict(vocab_size=VOCAB, special_ids=SPECIALS, mask_id=MASK, word_start=WORD_START)


def _samples(n, length, seed=0, special_rate=0.02):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, VOCAB, size=(n, length))
    specials = rng.random((n, length)) < special_rate
    tokens[specials] = 3  # EOS: documents end inside the window
    return tokens


def _runs(mask_row):
    """[start, end) of every run of True."""
    padded = np.r_[False, mask_row, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))


def test_words_start_at_the_word_mark_after_specials_and_at_the_window_start():
    texts = ["", "", "", "", " the", "re", " cat", "s"]  # pad, unk, bos, eos; ▁ reads as a space
    pieces = PieceTable(bytes=np.array([len(t) for t in texts]), opens=np.array([bool(t) and t[0] != " " for t in texts]),
                        closes=np.zeros(8, dtype=bool), inner=np.zeros(8, dtype=np.int64),
                        sentence_end=np.zeros(8, dtype=bool))
    table = word_starts(pieces)
    assert table.tolist() == [False] * 4 + [True, False, True, False]
    ids = np.array([5, 7, 4, 5, 3, 5, 6, 7, 3, 3])
    #               re s  ▁the re EOS re ▁cat s EOS EOS
    assert word_ids(ids, table, np.array([0, 1, 2, 3])).tolist() == [0, 0, 1, 1, -1, 2, 3, 3, -1, -1]


# --------------------------------------------------------------------------- whole-word MLM


@pytest.fixture(scope="module")
def whole_word():
    tokens = _samples(1500, 128)
    rows = [whole_word_mask(t, seed=1, epoch=0, sample_id=i, **ARGS) for i, t in enumerate(tokens)]
    return tokens, np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def test_whole_word_masking_takes_every_piece_of_a_word_or_none(whole_word):
    tokens, inputs, labels = whole_word
    chosen = labels != IGNORE_INDEX
    specials = np.array(sorted(SPECIALS | {MASK}))
    split_words = 0
    for row, taken in zip(tokens, chosen):
        words = word_ids(row, WORD_START, specials)
        for w in np.unique(words[words >= 0]):
            split_words += len(set(taken[words == w])) > 1
    assert split_words == 0
    assert (labels[chosen] == tokens[chosen]).all() and (inputs[~chosen] == tokens[~chosen]).all()
    # and multi-piece words are masked: a quarter of the chosen positions continue a word
    assert (~WORD_START[tokens[chosen]]).mean() > 0.25


def test_whole_word_budget_is_15_percent_never_exceeded(whole_word):
    tokens, _, labels = whole_word
    candidates = (~np.isin(tokens, ALL_SPECIAL)).sum(axis=1)
    chosen = (labels != IGNORE_INDEX).sum(axis=1)
    assert (chosen <= np.floor(0.15 * candidates) + 1).all()
    assert chosen.sum() / candidates.sum() == pytest.approx(0.15, abs=0.003)


def test_whole_word_80_10_10_and_specials_untouched(whole_word):
    tokens, inputs, labels = whole_word
    chosen = labels != IGNORE_INDEX
    n = chosen.sum()
    assert n > 25_000
    assert ((inputs == MASK) & chosen).sum() / n == pytest.approx(0.8, abs=0.01)
    assert ((inputs == tokens) & chosen).sum() / n == pytest.approx(0.1 + 0.1 / 95, abs=0.008)
    special = np.isin(tokens, ALL_SPECIAL)
    assert (labels[special] == IGNORE_INDEX).all() and (inputs[special] == tokens[special]).all()
    assert not np.isin(inputs[chosen & (inputs != MASK)], ALL_SPECIAL).any()


def test_whole_word_mask_is_a_pure_function_of_seed_epoch_and_sample_id():
    tokens = _samples(1, 256)[0]
    a = whole_word_mask(tokens, seed=7, epoch=3, sample_id=11, **ARGS)
    b = whole_word_mask(tokens.copy(), seed=7, epoch=3, sample_id=11, **ARGS)
    assert all((x == y).all() for x, y in zip(a, b))
    for other in (dict(seed=8, epoch=3, sample_id=11), dict(seed=7, epoch=4, sample_id=11), dict(seed=7, epoch=3, sample_id=12)):
        assert not (whole_word_mask(tokens, **other, **ARGS)[1] == a[1]).all(), other


# --------------------------------------------------------------------------- SpanBERT


@pytest.fixture(scope="module")
def spans():
    """About 12k spans over 1200 windows of 512 tokens."""
    tokens = _samples(1200, 512, seed=5)
    out = [spanbert_mask(t, seed=2, epoch=0, sample_id=i, **ARGS) for i, t in enumerate(tokens)]
    return tokens, [o[0] for o in out], [o[1] for o in out]


def test_span_lengths_follow_the_geometric_distribution_clipped_at_10(spans):
    _, _, plans = spans
    drawn = np.concatenate([p.drawn for p in plans])
    assert drawn.size > 10_000
    probs = span_length_probs()
    assert probs[0] == pytest.approx(0.2 / (1 - 0.8**10))  # p renormalised over 1..10
    assert drawn.min() >= 1 and drawn.max() <= MAX_SPAN_WORDS
    assert drawn.mean() == pytest.approx(3.8, rel=0.03)  # the paper's mean span length
    freq = np.bincount(drawn, minlength=MAX_SPAN_WORDS + 1)[1:] / drawn.size
    se = np.sqrt(probs * (1 - probs) / drawn.size)
    assert (np.abs(freq - probs) < 5 * se).all(), (freq, probs)
    chi2 = (((freq - probs) ** 2) / probs).sum() * drawn.size
    assert chi2 < 27.9  # 9 degrees of freedom, p = 0.001


def test_spans_are_whole_words_masked_as_drawn_with_real_boundaries(spans):
    tokens, outs, plans = spans
    specials = np.array(sorted(SPECIALS | {MASK}))
    for row, out, plan in zip(tokens[:300], outs, plans):
        words = word_ids(row, WORD_START, specials)
        chosen = out["targets"] != IGNORE_INDEX
        # each span is one run of labelled positions: spans never touch each other
        assert sorted(_runs(chosen)) == sorted(zip(plan.start.tolist(), plan.end.tolist()))
        for start, end, drawn, taken in zip(*plan):
            span_words = words[start:end]
            assert (span_words >= 0).all()  # no special inside
            assert words[start - 1] != span_words[0] and (end == len(row) or words[end] != span_words[-1])
            assert len(np.unique(span_words)) == taken
            # the boundary tokens exist and are not masked
            assert start > 0 and end < len(row) and not chosen[start - 1] and not chosen[end]
        # every span has its drawn length but the last, which the budget may cut
        assert (plan.words[:-1] == plan.drawn[:-1]).all() and plan.words[-1] <= plan.drawn[-1]


def test_span_budget_is_15_percent_overshot_by_less_than_a_word(spans):
    tokens, outs, _ = spans
    candidates = (~np.isin(tokens, ALL_SPECIAL)).sum(axis=1)
    chosen = np.array([(o["targets"] != IGNORE_INDEX).sum() for o in outs])
    longest_word = 1 + np.ceil(np.log(1e-4) / np.log(1 / 3))  # continuation pieces are 1/3 of the vocabulary
    assert (chosen >= np.floor(0.15 * candidates)).all()
    assert (chosen - np.ceil(0.15 * candidates) < longest_word).all()
    assert chosen.sum() / candidates.sum() == pytest.approx(0.15, abs=0.005)


def test_span_80_10_10_is_decided_per_span(spans):
    tokens, outs, plans = spans
    kinds = []
    for row, out, plan in zip(tokens, outs, plans):
        for start, end in zip(plan.start, plan.end):
            inp, orig = out["idx"][start:end], row[start:end]
            kind = "mask" if (inp == MASK).all() else "keep" if (inp == orig).all() else "random"
            if kind == "random":
                assert not (inp == MASK).any()  # never a mix of masked and unmasked tokens
            kinds.append(kind)
    kinds = np.array(kinds)
    assert (kinds == "mask").mean() == pytest.approx(0.8, abs=0.02)
    assert (kinds == "random").mean() == pytest.approx(0.1, abs=0.015)


def test_sbo_targets_point_at_the_span_boundaries(spans):
    tokens, outs, plans = spans
    for out, plan in zip(outs[:100], plans):
        for start, end in zip(plan.start, plan.end):
            assert (out["left"][start:end] == start - 1).all() and (out["right"][start:end] == end).all()
            assert out["offset"][start:end].tolist() == list(range(end - start))
        unlabelled = out["targets"] == IGNORE_INDEX
        assert (out["left"][unlabelled] == 0).all() and (out["offset"][unlabelled] == 0).all()


def test_specials_are_never_in_a_span(spans):
    tokens, outs, _ = spans
    for row, out in zip(tokens, outs):
        special = np.isin(row, ALL_SPECIAL)
        assert (out["targets"][special] == IGNORE_INDEX).all() and (out["idx"][special] == row[special]).all()


def test_span_mask_is_a_pure_function_of_seed_epoch_and_sample_id():
    tokens = _samples(1, 256)[0]
    a, _ = spanbert_mask(tokens, seed=1, epoch=2, sample_id=3, **ARGS)
    b, _ = spanbert_mask(tokens.copy(), seed=1, epoch=2, sample_id=3, **ARGS)
    assert all((a[k] == b[k]).all() for k in a)
    c, _ = spanbert_mask(tokens, seed=1, epoch=3, sample_id=3, **ARGS)
    assert not (a["targets"] == c["targets"]).all()
