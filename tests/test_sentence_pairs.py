"""NSP and SOP pair construction against BERT's and ALBERT's definitions (pure functions)."""

import numpy as np
import pytest

from strata.train.objectives import IGNORE_INDEX
from strata.train.objectives.sentence_pairs import documents, sentence_pair_sample

PAD, EOS, MASK, CLS, SEP = 0, 3, 4, 5, 6
SPECIALS = {0, 1, 2, 3}
ARGS = dict(vocab_size=100_000, special_ids=SPECIALS, mask_id=MASK, eos_id=EOS, cls_id=CLS, sep_id=SEP, pad_id=PAD)
L = 64


def _window(rng, n_docs):
    """A packed window of documents whose tokens say where they come from: document j of
    window w is 10_000 + 1000 * (n_docs * w + j) + 0, 1, 2, ... (so a continuation is
    the next integer, and another document is another thousand)."""
    lengths = rng.integers(8, 40, size=n_docs)
    lengths[-1] = L  # the last one runs past the window's end
    parts = []
    for j, n in enumerate(lengths):
        parts += [10_000 + 1000 * j + np.arange(n), [EOS]]
    return np.concatenate(parts)[rng.integers(0, 5):][:L]


def _pairs(task, n, n_docs, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        window = _window(rng, n_docs)
        sample = sentence_pair_sample(window, task=task, seed=1, epoch=0, sample_id=i, **ARGS)
        original = np.where(sample["targets"] != IGNORE_INDEX, sample["targets"], sample["idx"])
        seps = np.flatnonzero(original == SEP)
        a, b = original[1:seps[0]], original[seps[0] + 1:seps[1]]
        out.append((window, sample, original, a, b))
    return out


@pytest.mark.parametrize("task", ["nsp", "sop"])
def test_pair_layout_is_cls_a_sep_b_sep_then_padding(task):
    for window, s, original, a, b in _pairs(task, 300, 3):
        n = a.size + b.size + 3
        assert original[0] == CLS and original[a.size + 1] == SEP and original[n - 1] == SEP
        assert (original[n:] == PAD).all() and n <= L
        assert s["token_types"].tolist() == [0] * (a.size + 2) + [1] * (b.size + 1) + [0] * (L - n)
        assert s["segments"].tolist() == [0] * n + [1] * (L - n)  # padding is attended by nothing real
        assert a.size >= 1 and b.size >= 1 and EOS not in a and EOS not in b
        # the specials of the layout are never masked
        assert (s["targets"][original < 10] == IGNORE_INDEX).all() and (s["idx"][original < 10] == original[original < 10]).all()


def test_mlm_still_masks_15_percent_of_the_pair():
    chosen = candidates = 0
    for _, s, original, _, _ in _pairs("nsp", 1000, 3):
        chosen += (s["targets"] != IGNORE_INDEX).sum()
        candidates += (original >= 10).sum()
    assert chosen / candidates == pytest.approx(0.15, abs=0.005)


def test_nsp_is_half_true_continuations_half_segments_of_another_document():
    pairs = _pairs("nsp", 4000, 3)
    labels = np.array([s["pair_label"] for _, s, *_ in pairs])
    assert set(labels) == {0, 1}
    assert labels.mean() == pytest.approx(0.5, abs=0.025)  # 3 standard errors at n = 4000
    for window, s, _, a, b in pairs:
        doc_a, doc_b = a // 1000, b // 1000
        assert (doc_a == doc_a[0]).all() and (doc_b == doc_b[0]).all()  # each segment from one document
        assert (np.diff(a) == 1).all() and (np.diff(b) == 1).all()  # contiguous inside it
        if s["pair_label"] == 0:
            assert b[0] == a[-1] + 1  # the true continuation
        else:
            assert doc_b[0] != doc_a[0]  # another document of the window
            assert doc_b[0] in set(window[window != EOS] // 1000)


def test_nsp_of_a_single_document_window_is_not_labelled():
    for _, s, _, a, b in _pairs("nsp", 300, 1):
        assert s["pair_label"] == IGNORE_INDEX
        assert b[0] == a[-1] + 1  # built as a continuation; MLM still trains on it
        assert (s["targets"] != IGNORE_INDEX).any()


@pytest.mark.parametrize("n_docs", [1, 3])
def test_sop_is_half_in_order_half_swapped_from_one_document(n_docs):
    pairs = _pairs("sop", 3000, n_docs)
    labels = np.array([s["pair_label"] for _, s, *_ in pairs])
    assert labels.mean() == pytest.approx(0.5, abs=0.03)
    for _, s, _, a, b in pairs:
        assert a[0] // 1000 == b[0] // 1000  # one document
        if s["pair_label"] == 0:
            assert b[0] == a[-1] + 1
        else:
            assert a[0] == b[-1] + 1  # swapped: B came first


def test_split_point_is_spread_over_the_chunk():
    cuts = [a.size / (a.size + b.size) for *_, a, b in _pairs("sop", 2000, 1)]
    assert np.mean(cuts) == pytest.approx(0.5, abs=0.03)
    assert np.quantile(cuts, 0.1) < 0.2 and np.quantile(cuts, 0.9) > 0.8


def test_pairs_are_a_pure_function_of_seed_epoch_and_sample_id():
    window = _window(np.random.default_rng(3), 3)
    a = sentence_pair_sample(window, task="nsp", seed=1, epoch=0, sample_id=5, **ARGS)
    b = sentence_pair_sample(window.copy(), task="nsp", seed=1, epoch=0, sample_id=5, **ARGS)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    changed = [sentence_pair_sample(window, task="nsp", seed=1, epoch=e, sample_id=5, **ARGS) for e in range(1, 6)]
    assert any(not np.array_equal(a["idx"], c["idx"]) for c in changed)


def test_documents_split_at_eos():
    ids = np.array([7, 8, EOS, EOS, 9, EOS, 10, 11])
    assert [d.tolist() for d in documents(ids, EOS)] == [[7, 8], [9], [10, 11]]
