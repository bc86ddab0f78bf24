"""ELECTRA: the generator's sample, the generator's draws, the tied two-network model and
the paper's loss."""

import numpy as np
import pytest
import torch

from strata.train.electra import DISCRIMINATOR_WEIGHT, Electra, ElectraConfig, draw_from, generator_config
from strata.train.encoder import Encoder, EncoderConfig
from strata.train.objectives.electra import electra_sample
from strata.train.objectives import IGNORE_INDEX
from strata.train.presets import PRESETS

VOCAB, L, MASK = 64, 32, 4
SPECIALS = {0, 1, 2, 3}


def _tiny(**overrides):
    torch.manual_seed(0)
    return Electra(ElectraConfig(vocab_size=VOCAB, seq_len=L, **PRESETS["tiny"], **overrides))


def _batch(windows, ids):
    rows = [electra_sample(w, seed=0, epoch=0, sample_id=i, special_ids=SPECIALS, mask_id=MASK) for w, i in zip(windows, ids)]
    return [torch.from_numpy(np.stack([r[k] for r in rows])) for k in ("idx", "targets", "noise")]


def test_generator_sample_masks_15_percent_with_the_mask_token_only():
    tokens = np.random.default_rng(0).integers(0, VOCAB, size=(2000, 64))
    rows = [electra_sample(t, seed=1, epoch=0, sample_id=i, special_ids=SPECIALS, mask_id=MASK) for i, t in enumerate(tokens)]
    inputs, labels = np.stack([r["idx"] for r in rows]), np.stack([r["targets"] for r in rows])
    chosen = labels != IGNORE_INDEX
    special = np.isin(tokens, [0, 1, 2, 3, MASK])
    assert not chosen[special].any() and (inputs[special] == tokens[special]).all()
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.003)
    assert (inputs[chosen] == MASK).all() and (labels[chosen] == tokens[chosen]).all()
    assert (inputs[~chosen] == tokens[~chosen]).all()
    noise = np.concatenate([r["noise"] for r in rows])
    assert noise.dtype == np.float32 and 0 <= noise.min() and noise.max() < 1
    assert np.histogram(noise, bins=10, range=(0, 1))[0].min() > 0.95 * noise.size / 10
    again = electra_sample(tokens[7], seed=1, epoch=0, sample_id=7, special_ids=SPECIALS, mask_id=MASK)
    assert all(np.array_equal(again[k], rows[7][k]) for k in again)


def test_generator_is_a_quarter_of_the_discriminator_by_default():
    base = EncoderConfig(**PRESETS["bert-base"])
    small = generator_config(base, 0.25)
    assert (small.n_embd, small.n_head, small.n_layer) == (192, 3, 12)  # ELECTRA-base's generator: 1/4 width
    half = generator_config(base, 0.5)
    assert (half.n_embd, half.n_head) == (384, 6)
    tiny = _tiny()
    assert tiny.generator.project.out_features == 16 and tiny.generator.h[0].attn.n_head == 1
    assert _tiny(generator_ratio=0.5).generator.project.out_features == 32


def test_generator_draws_follow_its_softmax():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0]]).repeat(40_000, 1)
    draws = draw_from(logits, torch.rand(40_000, generator=torch.Generator().manual_seed(0)))
    freq = torch.bincount(draws, minlength=4).double() / 40_000
    assert torch.allclose(freq, torch.softmax(logits[0].double(), -1), atol=0.01)
    assert draw_from(torch.tensor([[0.0, 50.0, 0.0]]), torch.tensor([0.999999])).item() == 1


def test_embeddings_are_shared_and_the_loss_is_the_papers_sum():
    model = _tiny()
    windows = np.random.default_rng(1).integers(5, VOCAB, size=(4, L))
    loss, extras = model(*_batch(windows, range(4)))
    assert loss.item() == pytest.approx(extras["generator_loss"].item() + DISCRIMINATOR_WEIGHT * extras["discriminator_loss"].item(), rel=1e-5)
    assert 0 < extras["replaced"].item() <= 0.2  # only masked positions can be replaced
    loss.backward()
    # the generator's MLM loss alone reaches the shared token matrix: its output rows of every id
    model.zero_grad()
    extras_only = model.generator_logits(_batch(windows, range(4))[0], None)
    extras_only.sum().backward()
    assert (model.discriminator.wte.weight.grad.abs().sum(-1) > 0).all()
    assert not any(n.startswith("generator") and "wte" in n for n, _ in model.named_parameters())


def test_the_discriminator_loads_into_an_encoder_for_downstream_use():
    model = _tiny()
    encoder = Encoder(EncoderConfig(vocab_size=VOCAB, seq_len=L, post_ln=True, **PRESETS["tiny"]))
    missing, unexpected = encoder.load_state_dict(model.discriminator_state(), strict=False)
    assert not unexpected and all(k.startswith(("head.", "lm_head.")) for k in missing)
    idx = torch.randint(5, VOCAB, (2, L))
    assert torch.equal(encoder.hidden(idx), model.discriminator(idx))


def test_replaced_tokens_are_labelled_against_the_original():
    """Masked positions all holding one id, and a generator whose bias forces that id: every
    draw equals the original, so nothing counts as replaced; forcing another id replaces
    every masked position."""
    model = _tiny()
    inputs, labels, noise = _batch(np.random.default_rng(2).integers(5, VOCAB, size=(4, L)), range(4))
    masked = labels != IGNORE_INDEX
    labels = torch.where(masked, 7, labels)
    for forced, expected in ((7, 0.0), (8, masked.float().mean().item())):
        with torch.no_grad():
            model.generator_bias.fill_(-1e4)
            model.generator_bias[forced] = 1e4
            _, extras = model(inputs, labels, noise)
        assert extras["replaced"].item() == pytest.approx(expected)
