"""The encoder-decoder model: attention structure, padding, tying, sizes."""

import pytest
import torch

from strata.train.presets import SEQ2SEQ_PRESETS, build_model, model_for
from strata.train.t5 import T5

VOCAB = 64


def _tiny():
    torch.manual_seed(0)
    return build_model("t5", "t5-tiny", VOCAB, 32).eval()


def _logits(model, idx, decoder_idx, segments=None):
    with torch.no_grad():
        return model(idx, decoder_idx, None, segments)[0]


def test_the_decoder_is_causal_and_the_encoder_fully_visible():
    model = _tiny()
    idx, dec = torch.randint(5, VOCAB, (2, 12)), torch.randint(5, VOCAB, (2, 8))
    base = _logits(model, idx, dec)
    changed = dec.clone()
    changed[:, 5] = (changed[:, 5] + 1) % VOCAB
    other = _logits(model, idx, changed)
    assert torch.allclose(base[:, :5], other[:, :5], atol=1e-6) and not torch.allclose(base[:, 5:], other[:, 5:])
    last = idx.clone()
    last[:, -1] = (last[:, -1] + 1) % VOCAB  # the last source token reaches the first target position
    assert not torch.allclose(base[:, 0], _logits(model, last, dec)[:, 0])


def test_encoder_padding_is_invisible():
    model = _tiny()
    idx, dec = torch.randint(5, VOCAB, (1, 12)), torch.randint(5, VOCAB, (1, 6))
    segments = torch.zeros(1, 12, dtype=torch.long)
    segments[:, 9:] = -1
    padded = _logits(model, idx, dec, segments)
    other = idx.clone()
    other[:, 9:] = 7  # whatever the padding holds
    assert torch.allclose(padded, _logits(model, other, dec, segments), atol=1e-6)
    assert torch.allclose(padded, _logits(model, idx[:, :9], dec), atol=1e-5)  # = the unpadded source


def test_one_embedding_matrix_and_the_preset_sizes():
    model = _tiny().train()
    assert model.wte.weight is model.lm_head.weight
    _, loss = model(torch.randint(5, VOCAB, (2, 10)), torch.randint(5, VOCAB, (2, 6)), torch.randint(5, VOCAB, (2, 6)))
    loss.backward()
    assert model.wte.weight.grad is not None
    assert set(SEQ2SEQ_PRESETS) == {"t5-tiny", "t5-small"}
    with torch.device("meta"):
        small = build_model("t5", "t5-small", 32128, 512)
    assert len(small.encoder.h) == len(small.decoder.h) == 6 and small.config.n_embd == 512
    assert small.num_params() == pytest.approx(60.5e6, rel=0.02)  # T5-small: 60M
    assert isinstance(model_for("span_corruption", "tiny", VOCAB, 32), T5)
    with pytest.raises(ValueError, match="preset"):
        build_model("t5", "t5-xxl", VOCAB, 32)
