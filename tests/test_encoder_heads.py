"""The SBO head and the sentence-pair head on the encoder: what each prediction reads."""

import pytest
import torch
import torch.nn.functional as F

from strata.train.encoder_heads import PairEncoder, PairEncoderConfig, SpanBERT, SpanBERTConfig
from strata.train.objectives import IGNORE_INDEX
from strata.train.presets import PRESETS

VOCAB, L = 64, 24


def _config(kind, **fields):
    torch.manual_seed(0)
    return kind(vocab_size=VOCAB, seq_len=L, **PRESETS["tiny"], **fields)


def _span_batch():
    """Two rows; row 1 has a span at 5..8 (boundaries 4 and 8), row 0 one at 10..12."""
    idx = torch.randint(5, VOCAB, (2, L), generator=torch.Generator().manual_seed(0))
    targets = torch.full((2, L), IGNORE_INDEX)
    left, right, offset = (torch.zeros(2, L, dtype=torch.long) for _ in range(3))
    for row, (s, e) in enumerate([(10, 12), (5, 8)]):
        targets[row, s:e] = idx[row, s:e]
        idx[row, s:e] = 4
        left[row, s:e], right[row, s:e], offset[row, s:e] = s - 1, e, torch.arange(e - s)
    return dict(idx=idx, targets=targets, left=left, right=right, offset=offset)


def test_sbo_predicts_each_span_token_from_its_boundaries_and_offset():
    model = SpanBERT(_config(SpanBERTConfig)).eval()
    batch = _span_batch()
    with torch.no_grad():
        loss, extras = model(**batch)
        hidden = model.encoder.hidden(batch["idx"])
        # by hand for the token at row 1, position 6: boundaries 4 and 8, offset 1
        state = model.sbo.mlp(torch.cat([hidden[1, 4], hidden[1, 8], model.sbo.offset.weight[1]]))
        by_hand = F.cross_entropy(model.encoder.lm_head(state)[None], batch["targets"][1, 6][None])
        per_token = []
        for row, pos in [(0, 10), (0, 11), (1, 5), (1, 6), (1, 7)]:
            s = model.sbo.mlp(torch.cat([hidden[row, batch["left"][row, pos]], hidden[row, batch["right"][row, pos]],
                                         model.sbo.offset.weight[batch["offset"][row, pos]]]))
            per_token.append(F.cross_entropy(model.encoder.lm_head(s)[None], batch["targets"][row, pos][None]))
    assert extras["sbo_loss"].item() == pytest.approx(torch.stack(per_token).mean().item(), rel=1e-5)
    assert per_token[3].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert loss.item() == pytest.approx(extras["mlm_loss"].item() + extras["sbo_loss"].item(), rel=1e-5)


def test_sbo_can_be_switched_off():
    model = SpanBERT(_config(SpanBERTConfig, sbo=False))
    assert model.sbo is None
    loss, extras = model(**_span_batch())
    assert set(extras) == {"mlm_loss"} and loss.item() == pytest.approx(extras["mlm_loss"].item())


def test_pair_head_reads_cls_and_token_types_and_skips_unlabelled_pairs():
    model = PairEncoder(_config(PairEncoderConfig)).eval()
    idx = torch.randint(7, VOCAB, (3, L), generator=torch.Generator().manual_seed(1))
    token_types = torch.zeros(3, L, dtype=torch.long)
    token_types[:, 10:] = 1
    batch = dict(idx=idx, targets=torch.full((3, L), IGNORE_INDEX), token_types=token_types,
                 segments=torch.zeros(3, L, dtype=torch.long), pair_label=torch.tensor([0, 1, IGNORE_INDEX]))
    batch["targets"][:, 3] = idx[:, 3]
    with torch.no_grad():
        loss, extras = model(**batch)
        pooled = model.pooler(model.encoder.hidden(idx, None, token_types)[:, 0])
        expected = F.cross_entropy(model.classifier(pooled)[:2], torch.tensor([0, 1]))
        other_types = model.encoder.hidden(idx, None, torch.zeros_like(token_types))
    assert extras["pair_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(extras["mlm_loss"].item() + extras["pair_loss"].item(), rel=1e-5)
    assert not torch.allclose(other_types[:, 0], model.encoder.hidden(idx, None, token_types)[:, 0])


def test_pair_encoder_needs_token_types():
    with pytest.raises(AssertionError, match="token-type"):
        PairEncoder(_config(PairEncoderConfig, type_vocab_size=0))
