import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strata.train.encoder import Encoder
from strata.train.gpt import GPT
from strata.train.objectives import (
    IGNORE_INDEX,
    clm_batch,
    mlm_batch,
    positions_from_segments,
    segments_from_eos,
    unigram_entropy,
)
from strata.train.presets import PRESETS, model_for

VOCAB = 64
EOS, MASK = 3, 4
SPECIALS = {0, 1, 2, 3}  # pad, unk, bos, eos as the tokenizer numbers them
STATES = np.arange(5, 55)  # the Markov chain's tokens


def _tiny(objective, seq_len=64):
    torch.manual_seed(0)
    return model_for(objective, "tiny", VOCAB, seq_len).eval()


def _logits(model, idx, segments=None):
    with torch.no_grad():
        return model(idx, None, segments)[0]


# --------------------------------------------------------------------------- a stream with context


def _markov_stream(n, seed):
    """A first-order Markov chain over 50 tokens: each token has 3 possible successors
    (fixed, with fixed Dirichlet weights), so the next token given the previous one has
    about 0.9 nats of entropy while the unigram entropy is about 3.6."""
    chain = np.random.default_rng(0)
    successors = chain.choice(STATES, size=(len(STATES), 3))
    cumulative = chain.dirichlet(np.ones(3), size=len(STATES)).cumsum(axis=1)
    u = np.random.default_rng(seed).random(n)
    out = np.empty(n, dtype=np.int64)
    state = 0
    for i in range(n):
        state = successors[state, min(np.searchsorted(cumulative[state], u[i]), 2)] - STATES[0]
        out[i] = state + STATES[0]
    return out


@pytest.fixture(scope="module")
def streams():
    return _markov_stream(50_000, seed=1), _markov_stream(10_000, seed=2)


def _windows(stream, length, rng, n):
    starts = rng.integers(0, len(stream) - length, size=n)
    return np.stack([stream[s : s + length] for s in starts])


def test_clm_tiny_model_beats_the_unigram_entropy(streams):
    train, held_out = streams
    entropy = unigram_entropy(train)
    assert 3.3 < entropy < math.log(len(STATES))
    model = _tiny("clm").train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(3)
    for _ in range(200):
        _, loss = model(*clm_batch(_windows(train, 33, rng, 32)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, loss = model(*clm_batch(_windows(held_out, 65, np.random.default_rng(4), 128)))
    assert loss.item() < entropy - 2  # near the chain's ~0.9 nats; context-free models stay at ~3.6


def test_mlm_tiny_encoder_beats_the_unigram_entropy_on_masked_positions(streams):
    """Short windows (16) and lr 1e-3: a bidirectional model must first learn to attend to
    its neighbours, and with longer windows or a higher rate it sits longer on the
    unigram plateau."""
    train, held_out = streams
    entropy = unigram_entropy(train)
    model = _tiny("mlm", seq_len=16).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(3)
    masking = dict(seed=0, vocab_size=VOCAB, special_ids=SPECIALS, mask_id=MASK)
    for step in range(300):
        ids = range(step * 64, (step + 1) * 64)
        _, loss = model(*mlm_batch(_windows(train, 16, rng, 64), ids, epoch=0, **masking))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, loss = model(*mlm_batch(_windows(held_out, 16, np.random.default_rng(4), 256), range(256), epoch=1, **masking))
    assert loss.item() < entropy - 1.5


# --------------------------------------------------------------------------- attention masks


@pytest.mark.parametrize("t", [1, 17, 63])
def test_gpt_is_causal(t):
    model = _tiny("clm")
    idx = torch.randint(5, VOCAB, (2, 64))
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + 1 - 5) % (VOCAB - 5) + 5
    before, after = _logits(model, idx), _logits(model, changed)
    assert torch.allclose(before[:, :t], after[:, :t], atol=1e-6)
    assert not torch.allclose(before[:, t:], after[:, t:], atol=1e-3)  # the change is seen from t on


def test_encoder_is_bidirectional():
    model = _tiny("mlm")
    idx = torch.randint(5, VOCAB, (2, 64))
    changed = idx.clone()
    changed[:, 40] = MASK
    before, after = _logits(model, idx), _logits(model, changed)
    # Every earlier position sees it: by about 1e-4 at init, where float noise is about 1e-7.
    assert (before[:, :40] - after[:, :40]).abs().amax(-1).min() > 1e-5


def _two_documents():
    """A packed window: a document of 12 tokens (EOS last) and one of 20 that runs on."""
    a = torch.randint(5, VOCAB, (1, 12))
    a[0, -1] = EOS
    b = torch.randint(5, VOCAB, (1, 20))
    return a, b, torch.cat([a, b], dim=1)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_segments_keep_attention_inside_each_document(objective):
    model = _tiny(objective)
    a, b, packed = _two_documents()
    segments = segments_from_eos(packed, EOS)
    assert segments.tolist() == [[0] * 12 + [1] * 20]
    logits = _logits(model, packed, segments)
    in_a, in_b = packed.clone(), packed.clone()
    in_a[0, 5] = MASK
    in_b[0, 20] = MASK
    after_a, after_b = _logits(model, in_a, segments), _logits(model, in_b, segments)
    assert torch.allclose(logits[:, 12:], after_a[:, 12:], atol=1e-6)  # A's change is not seen in B
    assert torch.allclose(logits[:, :12], after_b[:, :12], atol=1e-6)  # nor B's in A
    # without segments the same change in A reaches B (by about 1e-4 at init; float noise is about 1e-7)
    assert not torch.allclose(_logits(model, packed)[:, 12:], _logits(model, in_a)[:, 12:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_a_packed_document_reads_as_if_alone(objective):
    """Block-diagonal attention and positions that restart: document B in a packed window
    gets the logits it gets at the start of a window of its own."""
    model = _tiny(objective)
    a, b, packed = _two_documents()
    logits = _logits(model, packed, segments_from_eos(packed, EOS))
    assert torch.allclose(logits[:, 12:], _logits(model, b), atol=1e-5)
    assert torch.allclose(logits[:, :12], _logits(model, a), atol=1e-5)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_one_segment_equals_the_plain_window(objective):
    model = _tiny(objective)
    idx = torch.randint(5, VOCAB, (3, 64))
    assert torch.allclose(_logits(model, idx), _logits(model, idx, torch.zeros_like(idx)), atol=1e-5)


def test_positions_restart_per_document():
    segments = torch.tensor([[0, 0, 0, 1, 1, 2], [4, 4, 4, 4, 4, 4]])
    assert positions_from_segments(segments).tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]]


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_embeddings_are_tied(objective):
    model = _tiny(objective).train()
    assert model.lm_head.weight is model.transformer.wte.weight
    names = [n for n, _ in model.named_parameters()]
    assert "lm_head.weight" not in names or "transformer.wte.weight" not in names  # one parameter
    idx = torch.randint(5, VOCAB, (2, 16))
    model(idx, idx)[1].backward()
    # the one gradient holds both uses: the output rows of every id and the input rows of the ids used
    grad = model.transformer.wte.weight.grad
    assert grad is not None and (grad.abs().sum(-1) > 0).all()


def test_gpt2_init_scales_residual_projections():
    torch.manual_seed(0)
    model = model_for("clm", "tiny", VOCAB, 64, n_embd=128)  # 16k weights per projection
    n_layer = model.config.n_layer
    for block in model.transformer.h:
        for proj in (block.attn.c_proj, block.mlp.c_proj):
            assert proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(2 * n_layer), rel=0.05)
        assert block.attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert (block.attn.c_attn.bias == 0).all()


def test_clm_loss_is_next_token_cross_entropy():
    model = _tiny("clm")
    windows = torch.randint(5, VOCAB, (2, 33))
    inputs, targets = clm_batch(windows)
    with torch.no_grad():
        logits, loss = model(inputs, targets)
    manual = sum(
        F.cross_entropy(logits[b, t][None], windows[b, t + 1][None]) for b in range(2) for t in range(32)
    ) / 64
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    ignored = targets.clone()
    ignored[:, 16:] = IGNORE_INDEX
    with torch.no_grad():
        _, half = model(inputs, ignored)
    assert half.item() == pytest.approx(F.cross_entropy(logits[:, :16].reshape(-1, VOCAB), targets[:, :16].reshape(-1)).item(), rel=1e-5)


def test_window_longer_than_the_model_is_refused():
    with pytest.raises(AssertionError):
        _tiny("clm", seq_len=8)(torch.zeros(1, 9, dtype=torch.long))


# --------------------------------------------------------------------------- presets


def _meta(objective, preset, vocab_size, seq_len):
    """The model on the meta device: shapes without memory, so counting 1B costs nothing."""
    with torch.device("meta"):
        return model_for(objective, preset, vocab_size, seq_len)


def test_meta_device_counts_what_a_real_model_has():
    for objective in ("clm", "mlm"):
        real = model_for(objective, "tiny", 50257, 1024)
        assert _meta(objective, "tiny", 50257, 1024).num_params() == real.num_params()
        assert real.num_params() == sum(p.numel() for p in set(real.parameters()))


def test_preset_parameter_counts():
    gpt2 = _meta("clm", "gpt2-small", 50257, 1024)
    assert isinstance(gpt2, GPT)
    assert gpt2.num_params() == 124_439_808  # Hugging Face's count for GPT-2 small
    assert _meta("clm", "gpt-350m", 50257, 1024).num_params() == 354_823_168  # GPT-2 medium
    bert = _meta("mlm", "bert-base", 30522, 512)
    assert isinstance(bert, Encoder)
    # BERT-base's "110M" (109.5M); it has token types and a pooler, this one neither
    assert bert.num_params() == pytest.approx(110e6, rel=0.01)
    assert 1.25e9 < _meta("clm", "gpt-1b", 50257, 2048).num_params() < 1.4e9  # GPT-3 XL's "1.3B"
    assert _meta("clm", "tiny", VOCAB, 64).num_params() < 1e6


def test_model_for_rejects_unknown_names():
    assert set(PRESETS) == {"tiny", "gpt2-small", "bert-base", "gpt-350m", "gpt-1b"}
    with pytest.raises(ValueError, match="preset"):
        model_for("clm", "gpt-7b", VOCAB, 64)
    with pytest.raises(ValueError, match="objective"):
        model_for("seq2seq", "tiny", VOCAB, 64)
