import math

import numpy as np
import pytest
import torch

from strata.train.objectives import (
    IGNORE_INDEX,
    clm_batch,
    mlm_batch,
    mlm_mask,
    positions_from_segments,
    segments_from_eos,
    unigram_entropy,
)

VOCAB = 100
SPECIALS = {0, 1, 2, 3, 57}  # one special in the middle of the id range
MASK = 4
ALL_SPECIAL = np.array(sorted(SPECIALS | {MASK}))
ARGS = dict(vocab_size=VOCAB, special_ids=SPECIALS, mask_id=MASK)


def _samples(n, length, seed=0):
    """Random token rows with about 10% special tokens (pad, EOS, ...) sprinkled in."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, VOCAB, size=(n, length))
    tokens[tokens == 57] = 58
    specials = rng.random((n, length)) < 0.1
    tokens[specials] = rng.choice(sorted(SPECIALS), size=specials.sum())
    return tokens


def _mask_all(tokens, seed=1, epoch=0, **kwargs):
    rows = [mlm_mask(t, seed=seed, epoch=epoch, sample_id=i, **ARGS, **kwargs) for i, t in enumerate(tokens)]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


@pytest.fixture(scope="module")
def masked():
    tokens = _samples(2000, 128)
    inputs, labels = _mask_all(tokens)
    return tokens, inputs, labels


# --------------------------------------------------------------------------- MLM statistics


def test_labels_hold_the_original_exactly_at_chosen_positions(masked):
    tokens, inputs, labels = masked
    chosen = labels != IGNORE_INDEX
    assert (labels[chosen] == tokens[chosen]).all()
    assert (inputs[~chosen] == tokens[~chosen]).all()  # nothing changes outside the chosen positions
    assert inputs.dtype == labels.dtype == np.int64


def test_special_positions_are_never_chosen(masked):
    tokens, inputs, labels = masked
    special = np.isin(tokens, ALL_SPECIAL)
    assert special.mean() == pytest.approx(0.1, abs=0.01)
    assert (labels[special] == IGNORE_INDEX).all()
    assert (inputs[special] == tokens[special]).all()


def test_masking_rate_is_15_percent_of_non_special_tokens(masked):
    tokens, inputs, labels = masked
    candidates = ~np.isin(tokens, ALL_SPECIAL)
    chosen = labels != IGNORE_INDEX
    assert chosen.sum() / candidates.sum() == pytest.approx(0.15, abs=0.002)
    # stochastic rounding: every sample gets floor or ceil of its exact share
    share = 0.15 * candidates.sum(axis=1)
    assert (np.abs(chosen.sum(axis=1) - share) < 1).all()


def test_masking_rate_is_unbiased_in_short_samples():
    tokens = np.arange(5, 15)[None].repeat(4000, axis=0)  # 10 candidates: 1.5 expected
    _, labels = _mask_all(tokens)
    per_sample = (labels != IGNORE_INDEX).sum(axis=1)
    assert set(per_sample) == {1, 2}
    assert per_sample.mean() == pytest.approx(1.5, abs=0.04)  # 5 standard errors


def test_80_10_10_split(masked):
    tokens, inputs, labels = masked
    chosen = labels != IGNORE_INDEX
    n = chosen.sum()
    to_mask = (inputs == MASK) & chosen
    unchanged = (inputs == tokens) & chosen
    randomized = chosen & ~to_mask & ~unchanged
    assert n > 30_000
    # standard errors: 0.0022, 0.0016, 0.0016; a random draw equals the original 1 time in 95
    assert to_mask.sum() / n == pytest.approx(0.8, abs=0.01)
    assert randomized.sum() / n == pytest.approx(0.1 * 94 / 95, abs=0.008)
    assert unchanged.sum() / n == pytest.approx(0.1 + 0.1 / 95, abs=0.008)
    assert (inputs[~chosen] != MASK).all()


def test_random_replacements_are_uniform_over_non_special_ids():
    tokens = _samples(1000, 512, seed=3)
    inputs, labels = _mask_all(tokens, rate=1.0)
    chosen = labels != IGNORE_INDEX
    assert chosen.sum() == (~np.isin(tokens, ALL_SPECIAL)).sum()  # rate 1: every candidate
    replaced = inputs[chosen & (inputs != MASK) & (inputs != tokens)]
    assert len(replaced) > 40_000
    assert not np.isin(replaced, ALL_SPECIAL).any()
    counts = np.bincount(replaced, minlength=VOCAB)
    non_special = np.setdiff1d(np.arange(VOCAB), ALL_SPECIAL)
    assert counts.sum() == counts[non_special].sum()
    expected = len(replaced) / len(non_special)  # about 450 each, standard deviation about 21
    assert np.abs(counts[non_special] - expected).max() < 0.25 * expected


def test_mask_id_is_special_even_when_not_listed():
    tokens = np.array([MASK] * 10 + [5] * 50)
    rows = [mlm_mask(tokens, seed=0, epoch=0, sample_id=i, vocab_size=6, special_ids=set(), mask_id=MASK, rate=1.0)
            for i in range(400)]
    inputs, labels = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
    assert (labels[:, :10] == IGNORE_INDEX).all() and (labels[:, 10:] == 5).all()
    # random replacements are uniform over 0, 1, 2, 3 and 5, never the mask: 0.1 x 4/5 of the
    # chosen positions become 0-3 (it would be 0.1 x 4/6 if the mask id were drawn too)
    assert np.isin(inputs[:, 10:], [0, 1, 2, 3]).mean() == pytest.approx(0.08, abs=0.006)


def test_a_sample_without_candidates_is_left_alone():
    tokens = np.array([0, 1, 2, 3, 0])
    inputs, labels = mlm_mask(tokens, seed=0, epoch=0, sample_id=0, **ARGS)
    assert (inputs == tokens).all() and (labels == IGNORE_INDEX).all()


# --------------------------------------------------------------------------- MLM purity


def test_mask_is_a_pure_function_of_seed_epoch_and_sample_id():
    tokens = _samples(1, 256)[0]
    before = tokens.copy()
    a = mlm_mask(tokens, seed=7, epoch=3, sample_id=11, **ARGS)
    b = mlm_mask(tokens, seed=7, epoch=3, sample_id=11, **ARGS)
    assert (tokens == before).all()  # the input is not modified
    assert all((x == y).all() for x, y in zip(a, b))
    for other in (dict(seed=8, epoch=3, sample_id=11), dict(seed=7, epoch=4, sample_id=11), dict(seed=7, epoch=3, sample_id=12)):
        c = mlm_mask(tokens, **other, **ARGS)
        assert not (a[1] == c[1]).all(), other


def test_mask_changes_every_epoch():
    tokens = _samples(1, 256)[0]
    chosen = np.stack([mlm_mask(tokens, seed=0, epoch=e, sample_id=5, **ARGS)[1] != IGNORE_INDEX for e in range(100)])
    assert len({m.tobytes() for m in chosen}) == 100
    # over the epochs every non-special position gets its turn, no special one ever does
    candidates = ~np.isin(tokens, ALL_SPECIAL)
    assert chosen[:, candidates].any(axis=0).all() and not chosen[:, ~candidates].any()
    assert chosen[:, candidates].mean() == pytest.approx(0.15, abs=0.002)


def test_batch_masks_do_not_depend_on_batch_composition_or_order():
    """What a worker count changes is which samples share a batch and in what order."""
    windows = torch.as_tensor(_samples(12, 64))
    ids = list(range(100, 112))
    whole = mlm_batch(windows, ids, seed=3, epoch=2, **ARGS)
    order = np.random.default_rng(0).permutation(12)
    shuffled = mlm_batch(windows[order], [ids[i] for i in order], seed=3, epoch=2, **ARGS)
    for x, y in zip(whole, shuffled):
        assert torch.equal(x[order], y)
    parts = [mlm_batch(windows[i::3], ids[i::3], seed=3, epoch=2, **ARGS) for i in range(3)]  # 3 workers
    for i in range(3):
        assert torch.equal(parts[i][0], whole[0][i::3]) and torch.equal(parts[i][1], whole[1][i::3])
    assert whole[0].dtype == whole[1].dtype == torch.int64 and whole[0].shape == (12, 64)


def test_mask_keeps_the_array_type():
    tokens = _samples(1, 32)[0]
    n_in, n_lab = mlm_mask(tokens, seed=0, epoch=0, sample_id=0, **ARGS)
    t_in, t_lab = mlm_mask(torch.as_tensor(tokens), seed=0, epoch=0, sample_id=0, **ARGS)
    assert isinstance(n_in, np.ndarray) and isinstance(t_in, torch.Tensor)
    assert (t_in.numpy() == n_in).all() and (t_lab.numpy() == n_lab).all()


# --------------------------------------------------------------------------- CLM


def test_clm_batch_shifts_targets_by_one():
    windows = np.arange(2 * 9, dtype=np.uint16).reshape(2, 9)
    inputs, targets = clm_batch(windows)
    assert inputs.shape == targets.shape == (2, 8)
    assert inputs.dtype == targets.dtype == torch.int64
    assert inputs.tolist() == [list(range(0, 8)), list(range(9, 17))]
    assert targets.tolist() == [list(range(1, 9)), list(range(10, 18))]
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # teacher forcing: the input is the previous target


# --------------------------------------------------------------------------- document boundaries


def test_segments_and_positions_from_eos():
    EOS = 3
    window = torch.tensor([[7, 8, 3, 9, 3, 3, 5, 6], [5, 5, 5, 5, 5, 5, 5, 3]])
    segments = segments_from_eos(window, EOS)
    assert segments.tolist() == [[0, 0, 0, 1, 1, 2, 3, 3], [0] * 8]
    assert positions_from_segments(segments).tolist() == [[0, 1, 2, 0, 1, 0, 0, 1], list(range(8))]
    assert segments_from_eos(window[0], EOS).tolist() == segments[0].tolist()  # one window [L] too
    assert positions_from_segments(segments[0]).tolist() == [0, 1, 2, 0, 1, 0, 0, 1]


def test_unigram_entropy():
    assert unigram_entropy([1, 2, 3, 4] * 10) == pytest.approx(math.log(4))
    assert unigram_entropy(np.full(10, 7)) == 0.0
    assert unigram_entropy(torch.tensor([0, 0, 0, 1])) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
