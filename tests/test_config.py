import pytest
import yaml

from strata.config import ConfigError, load_config, parse_config

from conftest import REPO

MINIMAL = {"sources": [{"name": "web", "format": "jsonl", "paths": ["data/*.jsonl"], "category": "Web"}]}


def _write(tmp_path, data):
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_minimal_config_gets_documented_defaults(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.seed == 1234
    assert config.filters.gopher_quality.min_words == 50
    assert config.dedup.near.num_perm == config.dedup.near.bands * config.dedup.near.rows
    # relative paths are resolved against the config file's folder
    assert config.sources[0].paths == [str(tmp_path / "data/*.jsonl")]


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d.update(sead=1), "sead: unknown key"),
        (lambda d: d["sources"][0].update(format="csv"), "sources.0.format"),
        (lambda d: d.update(filters={"gopher_quality": {"min_wrds": 3}}), "filters.gopher_quality.min_wrds: unknown key"),
        (lambda d: d.update(filters={"language": {"min_score": 2}}), "filters.language.min_score"),
        (lambda d: d.update(categories={"Web": {"epochs": 1, "weight": 2}}), "categories.Web"),
        (lambda d: d.update(dedup={"near": {"bands": 0}}), "dedup.near.bands"),
        (lambda d: d.update(categories={"A": {"weight": 0.6}, "B": {"weight": 0.5}, "C": {"epochs": 1}}), "categories: weights"),
        (lambda d: d["sources"][0].pop("category"), "sources.0"),
        (lambda d: d.update(filters={"per_category": {"Code": {"c4": {"enabeld": False}}}}), "filters.per_category.Code"),
        (lambda d: d.update(filters={"quality": {"enabled": True}}), "filters.quality"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, mutate, key):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_invalid_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config([1, 2])


def test_per_category_override_merges_over_defaults():
    data = dict(MINIMAL, filters={"gopher_quality": {"min_words": 10}, "per_category": {"Code": {"gopher_quality": {"enabled": False}}}})
    config = parse_config(data)
    code = config.filters.for_category("Code")
    web = config.filters.for_category("Web")
    assert code.gopher_quality.enabled is False and code.gopher_quality.min_words == 10
    assert web.gopher_quality.enabled is True


def test_config_hash_changes_with_any_threshold():
    a = parse_config(MINIMAL)
    b = parse_config(dict(MINIMAL, filters={"gopher_repetition": {"max_duplicate_line_fraction": 0.31}}))
    assert a.config_hash == parse_config(MINIMAL).config_hash
    assert a.config_hash != b.config_hash


@pytest.mark.parametrize("name", ["demo.yaml", "pile.yaml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / "configs" / name)
    assert config.sources


def test_model_paths_are_relative_to_the_config_file(tmp_path):
    data = dict(
        MINIMAL,
        filters={
            "quality": {"enabled": True, "model": "models/q.bin"},
            "per_category": {"Web": {"language": {"model": "lid.ftz"}}},
        },
    )
    config = load_config(_write(tmp_path, data))
    assert config.filters.quality.model == str(tmp_path / "models/q.bin")
    assert config.filters.for_category("Web").language.model == str(tmp_path / "lid.ftz")
    assert config.filters.for_category("Web").quality.model == str(tmp_path / "models/q.bin")
