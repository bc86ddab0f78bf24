"""Tokenizer sample, training and statistics on a tiny curated folder."""

import hashlib
import random
import shutil

import numpy as np
import pyarrow as pa
import pytest
import sentencepiece as spm

from strata.manifests.schemas import CURATED_SCHEMA
from strata.pipeline.schema import make_doc_id
from strata.pipeline.write import write_table
from strata.tokenize.encoders import SentencePieceEncoder
from strata.tokenize.pieces import PieceTable
from strata.tokenize.specials import objective_pieces, objective_special_ids, with_control_pieces
from strata.tokenize.stats import format_stats_table, tokenizer_stats
from strata.tokenize.trainer import (
    MAX_LINE_BYTES,
    load_tokenizer,
    load_tokenizer_record,
    sample_curated_text,
    special_ids,
    train_tokenizer,
    training_lines,
)

from corpus import WORDS, prose

GREEK = "λόγος θάλασσα ήλιος βιβλίο σπίτι δρόμος νερό φίλος καλός μεγάλος πόλη χρόνος".split()
LONG_LINE = " ".join(["unbroken"] * 2500)  # 22 KB without a newline


def code(rng: random.Random) -> str:
    name, arg = rng.choice(WORDS), rng.choice(WORDS)
    return (
        f"def {name}_{rng.randint(0, 99)}({arg}, count=0):\n"
        f'    """Return the {name} of {arg}."""\n'
        f"    if {arg} is None:\n"
        f"        return count\n"
        f"    for item in range({rng.randint(2, 40)}):\n"
        f"        count += item * {rng.randint(1, 9)}\n"
        f"\n"
        f"    return count\n"
    ) * rng.randint(1, 4)


def greek(rng: random.Random) -> str:
    return "\n".join(" ".join(rng.choice(GREEK) for _ in range(12)) + "." for _ in range(8))


def make_documents(seed: int = 3) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {
        "Prose": [prose(rng) for _ in range(150)] + [LONG_LINE],
        "Code": [code(rng) for _ in range(100)],
        "Greek": [greek(rng) for _ in range(40)],
    }


def write_curated(root, documents: dict[str, list[str]], files_per_category: int = 2) -> str:
    """OUT/curated/<category>/part-N.parquet, documents dealt round-robin to the files."""
    for category, texts in documents.items():
        for part in range(files_per_category):
            rows = [
                {"doc_id": make_doc_id("test", category, i), "text": text, "category": category, "source": "test",
                 "uri": f"mem://{category}", "record_index": i, "content_hash": hashlib.sha1(text.encode()).hexdigest()}
                for i, text in enumerate(texts)
                if i % files_per_category == part
            ]
            write_table(str(root / category / f"part-{part}.parquet"), pa.Table.from_pylist(rows, schema=CURATED_SCHEMA))
    return str(root)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    return write_curated(tmp_path_factory.mktemp("curated"), make_documents())


# --------------------------------------------------------------------------- sample


def test_sample_respects_shares_and_budget(curated, tmp_path):
    out = tmp_path / "sample.txt"
    record = sample_curated_text(curated, {"Prose": 3, "Code": 1}, 40_000, 1, str(out))
    prose_, code_ = record["per_category"]["Prose"], record["per_category"]["Code"]
    assert (prose_["budget_bytes"], code_["budget_bytes"]) == (30_000, 10_000)
    for c in (prose_, code_):
        assert 0.95 * c["budget_bytes"] <= c["bytes"] <= c["budget_bytes"]
        assert c["docs"] < c["available_docs"]
    assert "Greek" not in record["per_category"]
    assert record["bytes"] == out.stat().st_size <= 40_000
    assert record["docs"] == prose_["docs"] + code_["docs"]
    text = out.read_text(encoding="utf-8")
    assert "def " in text and not any(word in text for word in GREEK)


@pytest.mark.parametrize("sample_bytes", [1, 500, 7_777, 10**9])
def test_sample_never_exceeds_its_size_and_caps_at_what_there_is(curated, tmp_path, sample_bytes):
    out = tmp_path / "sample.txt"
    record = sample_curated_text(curated, None, sample_bytes, 1, str(out))
    assert record["bytes"] == out.stat().st_size <= sample_bytes
    assert sorted(record["per_category"]) == ["Code", "Greek", "Prose"]  # None: equal shares
    if sample_bytes == 10**9:  # everything, the leftover budget unused
        for c in record["per_category"].values():
            assert c["docs"] == c["available_docs"] and c["bytes"] < c["budget_bytes"]


def test_sample_is_deterministic_for_a_seed_whatever_the_file_layout(curated, tmp_path):
    shares = {"Prose": 1, "Code": 1}
    a = sample_curated_text(curated, shares, 20_000, 7, str(tmp_path / "a.txt"))
    b = sample_curated_text(curated, shares, 20_000, 7, str(tmp_path / "b.txt"))
    assert a["doc_id_digest"] == b["doc_id_digest"]
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    regrouped = write_curated(tmp_path / "regrouped", make_documents(), files_per_category=3)
    c = sample_curated_text(regrouped, shares, 20_000, 7, str(tmp_path / "c.txt"))
    assert c["doc_id_digest"] == a["doc_id_digest"]
    other = sample_curated_text(curated, shares, 20_000, 8, str(tmp_path / "d.txt"))
    assert other["doc_id_digest"] != a["doc_id_digest"]


def test_long_lines_are_chunked_for_sentencepiece(curated, tmp_path):
    out = tmp_path / "sample.txt"
    sample_curated_text(curated, {"Prose": 1}, 10**9, 1, str(out))
    lines = out.read_bytes().split(b"\n")
    assert max(len(line) for line in lines) <= MAX_LINE_BYTES
    assert b"".join(line for line in lines if line.startswith(b"unbroken") or line.startswith(b" unbroken")) == LONG_LINE.encode()

    for line in ("é" * 5000, "漢字" * 3000, "word " * 2000, "x" * MAX_LINE_BYTES):
        chunks = list(training_lines(line))
        assert all(len(c) <= MAX_LINE_BYTES for c in chunks)
        assert b"".join(chunks).decode("utf-8") == line  # cut at character boundaries
    assert list(training_lines("a\n\n   \n\tb  \n")) == [b"a", b"\tb  "]


def test_sample_shares_name_categories(curated, tmp_path):
    with pytest.raises(ValueError, match=r"not in .*\['Poetry'\].*it holds \['Code', 'Greek', 'Prose'\]"):
        sample_curated_text(curated, {"Prose": 1, "Poetry": 1}, 1000, 1, str(tmp_path / "sample.txt"))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def trained(request, curated, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tok-{request.param}")
    sample = sample_curated_text(curated, {"Prose": 2, "Code": 1}, 10**9, 1, str(folder / "sample.txt"))
    record = train_tokenizer(
        str(folder / "sample.txt"), str(folder / "tok"), vocab_size=500, model_type=request.param,
        user_defined_symbols=["<tool>"], seed=1, threads=2, sample=sample,
    )
    return folder / "tok", record


def test_special_ids_and_mask(trained):
    out, record = trained
    model = str(out / "tokenizer.model")
    sp = load_tokenizer(model)
    assert record["special_ids"] == special_ids(model) == {"pad": 0, "unk": 1, "bos": 2, "eos": 3, "mask": 4}
    assert [sp.id_to_piece(i) for i in range(7)] == ["<pad>", "<unk>", "<s>", "</s>", "<mask>", "\n", "<tool>"]
    assert sp.encode("<mask>") == [4]
    assert sp.encode("<tool>") == [6]
    assert 4 in sp.encode("the <mask> river")
    assert sp.encode("a\nb").count(5) == 1  # the newline is a piece, not a byte


def test_round_trip_with_byte_fallback_and_code_whitespace(trained):
    out, _ = trained
    sp = load_tokenizer(str(out / "tokenizer.model"))
    documents = make_documents()
    texts = [
        documents["Prose"][0],
        documents["Code"][0],
        documents["Greek"][0],
        "class A:\n    def f(self):\n\t\treturn  1   \n\n\n        # indented comment\n",
        "  leading and trailing spaces  ",
        "emoji 😀🧪 and CJK 漢字かな, digits 2024",
    ]
    for text in texts:
        assert sp.decode(sp.encode(text)) == text
    ids = sp.encode("😀")
    assert len(ids) == 4 and all(sp.is_byte(i) for i in ids)
    assert sp.encode("2024", out_type=str) == ["2", "0", "2", "4"]


def test_record_describes_the_model(trained):
    out, record = trained
    model = (out / "tokenizer.model").read_bytes()
    assert record["model_sha256"] == hashlib.sha256(model).hexdigest()
    assert load_tokenizer_record(str(out)) == record
    assert record["vocab_size"] == load_tokenizer(str(out / "tokenizer.model")).get_piece_size() <= 500
    assert record["vocab_size"] >= 450
    params = record["parameters"]
    assert params["byte_fallback"] and params["split_digits"] and params["seed"] == 1
    assert record["sample"]["docs"] > 0 and len(record["sample"]["sha256"]) == 64
    # the stage records the type it trained; a given model's type is read from the model itself
    assert record["model_type"] == params["model_type"] == SentencePieceEncoder(model).model_type


def test_training_is_reproducible_wherever_the_sample_is(trained, tmp_path):
    out, record = trained
    copy = tmp_path / "elsewhere.txt"
    shutil.copy(record["sample"]["path"], copy)
    again = train_tokenizer(
        str(copy), str(tmp_path / "tok"), vocab_size=500, model_type=record["parameters"]["model_type"],
        user_defined_symbols=["<tool>"], seed=1, threads=2,
    )
    assert again["model_sha256"] == record["model_sha256"]


# --------------------------------------------------------------------------- stats


def test_stats_show_fertility_and_byte_fallback_of_an_unseen_script(trained, curated):
    out, _ = trained
    stats = tokenizer_stats(str(out / "tokenizer.model"), curated, max_docs_per_category=30)
    prose_, code_, greek_ = (stats["categories"][c] for c in ("Prose", "Code", "Greek"))
    assert prose_["docs"] == code_["docs"] == greek_["docs"] == 30
    assert 1.0 <= prose_["tokens_per_word"] <= 3.5
    assert 0.1 <= prose_["tokens_per_byte"] <= 0.6
    assert prose_["byte_fallback_rate"] < 0.01
    assert greek_["byte_fallback_rate"] > 0.5  # never in the sample: spelled in bytes
    assert greek_["tokens_per_word"] > 3 * prose_["tokens_per_word"]
    assert stats["all"]["tokens"] == sum(c["tokens"] for c in stats["categories"].values())
    table = format_stats_table(stats)
    assert "Greek" in table and table.splitlines()[-1].startswith("all")


def test_curated_root_may_be_an_fsspec_uri(curated, tmp_path):
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.put(curated, "/tok-test/curated", recursive=True)
    remote = sample_curated_text("memory://tok-test/curated", None, 20_000, 1, str(tmp_path / "remote.txt"))
    local = sample_curated_text(curated, None, 20_000, 1, str(tmp_path / "local.txt"))
    assert remote["doc_id_digest"] == local["doc_id_digest"]
    assert (tmp_path / "remote.txt").read_bytes() == (tmp_path / "local.txt").read_bytes()


# --------------------------------------------------------------------------- objective specials and piece table


def test_objective_specials_are_appended_as_control_pieces(trained, tmp_path):
    out, record = trained
    before = (out / "tokenizer.model").read_bytes()
    sp = load_tokenizer(str(out / "tokenizer.model"))
    n = sp.get_piece_size()
    model = with_control_pieces(before, objective_pieces(8))
    assert with_control_pieces(model, objective_pieces(8)) == model  # pieces it has are not added twice
    grown = spm.SentencePieceProcessor(model_proto=model)
    assert grown.get_piece_size() == n + 5 + 8
    assert [grown.id_to_piece(i) for i in range(n)] == [sp.id_to_piece(i) for i in range(n)]  # no id moves
    assert objective_special_ids(grown) == {
        "cls": n, "sep": n + 1, "mode_nlu": n + 2, "mode_nlg": n + 3, "mode_s2s": n + 4, "sentinels": [n + 5, 8]}
    assert grown.id_to_piece(n + 5 + 7) == "<extra_id_7>" and all(grown.is_control(i) for i in range(n, n + 13))
    # text never becomes a control piece: a document cannot inject a sentinel or a mode token
    for text in [*make_documents()["Prose"][:3], "<extra_id_0> [NLU] <cls> x <sep>"]:
        assert grown.encode(text) == sp.encode(text)
        assert max(grown.encode(text)) < n
    assert grown.decode([n, n + 5, 7]) == grown.decode([7])  # and they decode to nothing


def test_a_tokenizer_trained_with_objective_specials_records_their_ids(trained, tmp_path):
    out, record = trained
    runs = [
        train_tokenizer(record["sample"]["path"], str(tmp_path / name), vocab_size=500,
                        model_type=record["parameters"]["model_type"], user_defined_symbols=["<tool>"],
                        control_pieces=objective_pieces(100), seed=1, threads=2)
        for name in ("a", "b")
    ]
    assert runs[0]["model_sha256"] == runs[1]["model_sha256"]  # deterministic
    ids = runs[0]["special_ids"]
    assert ids == special_ids(str(tmp_path / "a" / "tokenizer.model"))
    assert ids["mask"] == 4 and ids["sentinels"] == [record["vocab_size"] + 5, 100]
    assert ids["cls"] == record["vocab_size"] and runs[0]["vocab_size"] == record["vocab_size"] + 105


def test_piece_table_counts_the_bytes_and_words_of_any_text(trained):
    out, _ = trained
    sp = load_tokenizer(str(out / "tokenizer.model"))
    table = PieceTable.of(sp)
    documents = make_documents()
    texts = [documents["Prose"][0], documents["Code"][0], documents["Greek"][0], "emoji 😀🧪 and CJK 漢字かな, 2024",
             "  indented\n\tlines  and <mask> too \n"]
    for text in texts:
        ids = np.array(sp.encode(text))
        assert table.bytes[ids].sum() == len(text.encode()), text
        previous = np.concatenate([[3], ids[:-1]])  # after an EOS (a control piece: 0 bytes, ends a word)
        assert table.words(previous, ids) == len(text.split()), text
    assert table.bytes[[0, 1, 2, 3]].tolist() == [0, 0, 0, 0]
    assert table.bytes[sp.encode("😀")].tolist() == [1, 1, 1, 1]  # byte fallback
