"""XLNet: the permutation sample against the paper's definition, the two-stream masks, and
the model seeing exactly what the factorization order allows."""

import math

import numpy as np
import pytest
import torch

from strata.train.encoder import EncoderConfig
from strata.train.objectives import IGNORE_INDEX
from strata.train.objectives.permutation import permutation_sample, predicted_count
from strata.train.presets import PRESETS
from strata.train.xlnet import XLNet, two_stream_masks

VOCAB, L = 64, 48


def _tiny(seq_len=L):
    torch.manual_seed(0)
    return XLNet(EncoderConfig(vocab_size=VOCAB, seq_len=seq_len, **PRESETS["tiny"]))


def _batch(windows, sample_ids, epoch=0):
    rows = [permutation_sample(w, seed=3, epoch=epoch, sample_id=i) for w, i in zip(windows, sample_ids)]
    return [torch.from_numpy(np.stack([r[k] for r in rows])) for k in ("idx", "rank", "targets")]


def test_partial_prediction_is_the_last_sixth_of_the_order():
    tokens = np.random.default_rng(0).integers(5, VOCAB, size=600)
    s = permutation_sample(tokens, seed=0, epoch=0, sample_id=0)
    assert sorted(s["rank"].tolist()) == list(range(600))  # a permutation
    predicted = s["targets"] != IGNORE_INDEX
    assert predicted.sum() == predicted_count(600) == 100
    assert (s["rank"][predicted] >= 500).all() and (s["targets"][predicted] == tokens[predicted]).all()
    assert (s["idx"] == tokens).all()  # nothing is masked in the input
    assert predicted_count(6, k=6) == 1 and predicted_count(2, k=1) == 1  # never all, never none


def test_factorization_orders_are_uniform_and_change_with_the_sample():
    """Over 6000 samples of 8 positions, each position takes each rank 1/8 of the time, and
    the order of pairs is a fair coin."""
    ranks = np.stack([permutation_sample(np.arange(8), seed=1, epoch=0, sample_id=i)["rank"] for i in range(6000)])
    counts = np.stack([np.bincount(ranks[:, p], minlength=8) for p in range(8)])
    chi2 = ((counts - 750) ** 2 / 750).sum()
    assert chi2 < 93  # 49 degrees of freedom, p = 0.0001
    assert (ranks[:, 0] < ranks[:, 1]).mean() == pytest.approx(0.5, abs=0.02)
    assert len({r.tobytes() for r in ranks}) > 5000  # 8! = 40320 orders
    again = permutation_sample(np.arange(8), seed=1, epoch=0, sample_id=17)["rank"]
    assert (again == ranks[17]).all()
    assert not all((permutation_sample(np.arange(8), seed=1, epoch=e, sample_id=17)["rank"] == ranks[17]).all()
                   for e in range(1, 4))


def test_two_stream_masks_follow_the_factorization_order():
    rank = torch.tensor([[2, 0, 3, 1, 4]])
    predicted = rank >= 3
    content, query = (m[0, 0] for m in two_stream_masks(rank, predicted))
    for i in range(5):
        for j in range(5):
            assert content[i, j] == (rank[0, j] <= rank[0, i])
            if predicted[0, i]:
                assert query[i, j] == (rank[0, j] < rank[0, i])  # never itself, exactly the earlier ones
    assert query.any(-1).all()  # no empty row: the first in the order is not predicted


def _changed(idx, t):
    out = idx.clone()
    out[:, t] = (idx[:, t] - 5 + 1) % (VOCAB - 5) + 5
    return out


def test_a_prediction_sees_exactly_the_tokens_earlier_in_the_order():
    model = _tiny().eval()
    idx, rank, labels = _batch(np.random.default_rng(1).integers(5, VOCAB, size=(1, L)), [0])
    predicted = torch.nonzero(labels[0] != IGNORE_INDEX).flatten().tolist()
    with torch.no_grad():
        base = model(idx, rank, labels)[0]
        for j in range(L):
            after = model(_changed(idx, j), rank, labels)[0]
            for n, t in enumerate(predicted):
                moved = not torch.allclose(base[n], after[n], atol=1e-6)
                # its own token (j == t) and anything later in the order are invisible
                assert moved == bool(rank[0, j] < rank[0, t]), (j, t)


def test_tiny_xlnet_learns_from_permuted_context():
    """Windows of one id repeated, among 11 ids: any visible token gives the predicted one,
    so the loss falls below the unigram entropy ln(11) only through the query stream's
    attention to earlier content."""
    model = _tiny().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(40):
        windows = np.repeat(rng.integers(5, 16, size=(8, 1)), L, axis=1)
        _, loss = model(*_batch(windows, range(step * 8, step * 8 + 8)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > math.log(VOCAB) - 0.5
    assert np.mean(losses[-5:]) < math.log(11) - 1.2, losses[::5]


def test_embeddings_are_tied_and_the_query_vector_is_learned():
    model = _tiny()
    assert model.lm_head.weight is model.transformer.wte.weight
    idx, rank, labels = _batch(np.random.default_rng(2).integers(5, VOCAB, size=(2, L)), [0, 1])
    model(idx, rank, labels)[1].backward()
    assert model.query.grad is not None and model.query.grad.abs().sum() > 0
