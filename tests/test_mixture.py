import csv

import pytest

from strata.config import CategoryConfig, ConfigError
from strata.manifests.mixture import planned_epochs, resolve_shares

from conftest import REPO


def _pile():
    """The Pile's 22 components as its paper and README publish them."""
    with open(REPO / "configs" / "pile-components.tsv") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_epochs_formula_reproduces_the_published_pile_mixture():
    rows = _pile()
    assert len(rows) == 22
    categories = {r["pile_set_name"]: CategoryConfig(epochs=float(r["epochs"])) for r in rows}
    sizes = {r["pile_set_name"]: round(float(r["raw_size_gib"]) * 2**30) for r in rows}
    shares = resolve_shares(categories, sizes)
    for r in rows:
        assert shares[r["pile_set_name"]] * 100 == pytest.approx(float(r["share_pct"]), abs=0.01)
    assert sum(shares.values()) == pytest.approx(1)


def test_weights_alone_are_normalised():
    shares = resolve_shares({"a": CategoryConfig(weight=3), "b": CategoryConfig(weight=1)}, {"a": 10, "b": 1000})
    assert shares == {"a": 0.75, "b": 0.25}


def test_weights_beside_epochs_are_absolute_shares():
    categories = {"code": CategoryConfig(weight=0.2), "web": CategoryConfig(epochs=1), "books": CategoryConfig(epochs=2)}
    shares = resolve_shares(categories, {"code": 5, "web": 600, "books": 100})
    assert shares["code"] == pytest.approx(0.2)
    assert shares["web"] == pytest.approx(0.8 * 600 / 800)
    assert shares["books"] == pytest.approx(0.8 * 200 / 800)


def test_weights_that_leave_nothing_for_epochs_are_a_config_error():
    with pytest.raises(ConfigError, match="categories"):
        resolve_shares({"a": CategoryConfig(weight=1.0), "b": CategoryConfig(epochs=1)}, {"a": 1, "b": 1})


def test_unconfigured_and_empty_categories():
    shares = resolve_shares({"a": CategoryConfig(epochs=2), "gone": CategoryConfig(epochs=1)}, {"a": 100, "new": 200, "gone": 0})
    assert shares == {"a": 0.5, "new": 0.5}  # 'new' counts as epochs 1; 'gone' has no tokens


def test_planned_epochs():
    shares = {"a": 0.5, "b": 0.5}
    assert planned_epochs(shares, {"a": 100, "b": 400}, 1000) == {"a": 5.0, "b": 1.25}
