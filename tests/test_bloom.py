"""The Bloom filter of eval n-grams: no false negatives, false positives near the rate it
was sized for, and decontamination that finds what the exact index finds."""

import random

import numpy as np
import pytest

from strata.config import DecontaminateConfig
from strata.pipeline.bloom import BloomFilter
from strata.pipeline.decontaminate import BloomEvalNgrams, decontaminate, eval_index_from_dict, load_eval_index

from corpus import prose
from test_decontaminate import PASSAGE, QUESTION, eval_sets  # noqa: F401 (a fixture)


def _keys(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, n, dtype=np.uint64, endpoint=False)


def test_every_key_added_is_found():
    bloom = BloomFilter.for_capacity(50_000, 1e-4)
    keys = _keys(1, 50_000)
    bloom.add(keys)
    assert bloom.contains(keys).all()
    assert BloomFilter.from_dict(bloom.to_dict()).contains(keys).all()


@pytest.mark.parametrize("fp_rate", [1e-2, 1e-3])
def test_false_positives_come_near_the_configured_rate(fp_rate):
    bloom = BloomFilter.for_capacity(20_000, fp_rate)
    bloom.add(_keys(2, 20_000))
    assert bloom.false_positive_rate() <= fp_rate * 1.01  # the stated bound, for the keys added
    others = _keys(3, 400_000)  # never added (a 64-bit collision with the 20k is negligible)
    measured = bloom.contains(others).mean()
    assert 0.5 * fp_rate <= measured <= 1.5 * fp_rate


def test_the_size_follows_blooms_optimum():
    bloom = BloomFilter.for_capacity(100_000, 1e-6)
    assert bloom.hashes == 20 and 2_875_000 <= bloom.bits <= 2_876_000  # ~28.8 bits a key
    assert bloom.nbytes == (bloom.bits + 7) // 8


def test_bloom_decontamination_finds_what_the_sorted_index_finds(eval_sets):  # noqa: F811
    bloom_cfg = eval_sets.model_copy(update={"index": "bloom"})
    bloom = load_eval_index(bloom_cfg)
    assert isinstance(bloom, BloomEvalNgrams) and len(bloom) == 8 + 19 + 1
    assert isinstance(eval_index_from_dict(bloom.to_dict()), BloomEvalNgrams)
    sorted_index = load_eval_index(eval_sets)
    rng = random.Random(5)
    for planted in (PASSAGE, QUESTION, "no eval text at all"):
        text = f"{prose(rng, 20)}\n{planted}\n{prose(rng, 20)}"
        assert decontaminate(text, bloom, bloom_cfg) == decontaminate(text, sorted_index, eval_sets)


def test_the_index_is_a_config_choice():
    assert DecontaminateConfig(sets=[{"name": "a", "paths": ["x"]}]).index == "sorted"
    with pytest.raises(ValueError):
        DecontaminateConfig(sets=[{"name": "a", "paths": ["x"]}], index="hash")
