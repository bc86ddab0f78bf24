"""The objective framework: the attention mask function, the registry and its errors."""

import pytest
import torch

from strata.config import ConfigError, load_train_config
from strata.train.attention import attention_mask
from strata.train.objectives import OBJECTIVES, Vocabulary, objective_for

TOKENIZER = Vocabulary(64, {"pad": 0, "unk": 1, "bos": 2, "eos": 3, "mask": 4})


def _cfg(**overrides):
    return load_train_config(None, {"data": "d", "out": "o", "objective": "clm", "steps": 1, **overrides})


def _visible(mask):
    return mask[0, 0].int().tolist()


def test_causal_and_fully_visible():
    one = torch.zeros(1, 4, dtype=torch.long)
    assert _visible(attention_mask(one, causal=False)) == [[1] * 4] * 4
    assert _visible(attention_mask(one, causal=True)) == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_prefix_is_fully_visible_then_causal():
    mask = attention_mask(torch.zeros(2, 5, dtype=torch.long), causal=True, prefix=torch.tensor([2, 0]))
    assert mask[0, 0].int().tolist() == [
        [1, 1, 0, 0, 0],  # the prefix sees itself whole...
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],  # ...the continuation sees the prefix and what came before it
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]
    assert torch.equal(mask[1], attention_mask(torch.zeros(1, 5, dtype=torch.long), causal=True)[0])  # prefix 0: causal


def test_block_diagonal_composes_with_prefix():
    segments = torch.tensor([[0, 0, 0, 1, 1]])
    mask = attention_mask(segments, causal=True, prefix=torch.tensor([4]))
    assert _visible(mask) == [
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],  # the second document sees only itself: position 3 is in the prefix, 4 not
        [0, 0, 0, 1, 1],
    ]
    assert _visible(attention_mask(segments, causal=False)) == [[1, 1, 1, 0, 0]] * 3 + [[0, 0, 0, 1, 1]] * 2


def test_registry_names_every_objective_and_config_errors_name_the_key():
    assert {"clm", "mlm"} <= set(OBJECTIVES)
    for name, objective in OBJECTIVES.items():
        assert objective.name == name and objective.architecture
    with pytest.raises(ConfigError, match="objective: unknown objective 'gpt'"):
        _cfg(objective="gpt")
    with pytest.raises(ConfigError, match="objective"):
        objective_for("gpt", _cfg(), TOKENIZER)


def test_an_objective_needing_specials_the_build_lacks_names_the_tokenizer_key():
    no_mask = Vocabulary(64, {**TOKENIZER.special_ids, "mask": None})
    with pytest.raises(ConfigError, match="tokenizer.objective_specials"):
        objective_for("mlm", _cfg(objective="mlm"), no_mask)


def test_clm_and_mlm_batches_are_the_pure_functions_they_were():
    from strata.train.objectives import clm_batch, mlm_batch

    windows = torch.randint(5, 64, (4, 17))
    ids, epochs = torch.arange(10, 14), torch.zeros(4, dtype=torch.long)
    clm = objective_for("clm", _cfg(), TOKENIZER).batch(windows, ids, epochs)
    assert [torch.equal(a, b) for a, b in zip((clm["idx"], clm["targets"]), clm_batch(windows))] == [True, True]
    mlm = objective_for("mlm", _cfg(objective="mlm", seed=5), TOKENIZER).batch(windows[:, :16], ids, epochs)
    x, y = mlm_batch(windows[:, :16], ids.tolist(), seed=5, epoch=0, vocab_size=64, special_ids=[0, 1, 2, 3], mask_id=4)
    assert torch.equal(mlm["idx"], x) and torch.equal(mlm["targets"], y) and "segments" not in mlm
    assert "segments" in objective_for("clm", _cfg(doc_mask=True), TOKENIZER).batch(windows, ids, epochs)
