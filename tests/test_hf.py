"""Hugging Face interchange on the tiny presets: the exported tokenizer gives strata's ids,
transformers loads the export and gives strata's logits, --init-from continues it exactly,
builds tokenize with a HF tokenizer, generation with a KV cache, and eval equals the
trainer's validation."""

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

transformers = pytest.importorskip("transformers")  # the strata[hf] extra, installed by make setup

from strata.cli import main  # noqa: E402
from strata.config import ConfigError, load_train_config, parse_config  # noqa: E402
from strata.tokenize.hf import save_tokenizer_folder, sentencepiece_to_tokenizer  # noqa: E402
from strata.tokenize.trainer import special_ids  # noqa: E402
from strata.train.data import StreamingWindows  # noqa: E402
from strata.train.checkpoint import run_model  # noqa: E402
from strata.train.evaluate import eval_build, eval_files  # noqa: E402
from strata.train.generate import generate_ids, prompt_ids  # noqa: E402
from strata.train.load import load_model  # noqa: E402
from strata.train.trainer import train  # noqa: E402

from conftest import IN_MEMORY  # noqa: E402

SEQ_LEN = 64
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Code, docstrings, Unicode tables and prose: html.entities and the codecs hold thousands of non-ASCII characters.
REAL_FILES = ["html/entities.py", "encodings/cp1252.py", "encodings/koi8_r.py", "textwrap.py", "difflib.py",
              "string.py", "unicodedata.py", "locale.py", "calendar.py", "email/_header_value_parser.py"]


def run_config(out, run, **overrides):
    settings = dict(data=str(out), out=str(run), objective="clm", model="tiny", seq_len=SEQ_LEN, batch_size=8,
                    steps=30, lr=3e-3, min_lr=3e-4, warmup=5, seed=1, log_every=1, eval_every=0, eval_batches=2,
                    save_every=0)
    return load_train_config(None, {**settings, **overrides})


@pytest.fixture(scope="module")
def clm_run(code_build, tmp_path_factory):
    out, _ = code_build
    run = tmp_path_factory.mktemp("clm-run")
    train(run_config(out, run))
    return out, run


@pytest.fixture(scope="module")
def clm_export(clm_run, tmp_path_factory):
    _, run = clm_run
    folder = tmp_path_factory.mktemp("clm-export")
    assert main(["export", str(run), "--out", str(folder)]) == 0
    return folder


def real_lines() -> list[str]:
    """Source lines of REAL_FILES, then Unicode: every HTML5 entity's characters and the
    standard library's names for a few thousand code points of many scripts."""
    import html.entities
    import unicodedata

    lines = []
    for name in REAL_FILES:
        path = STDLIB / name
        if path.exists():
            lines += path.read_text(encoding="utf-8").split("\n")
    lines += [f"&{name} is {text!r}: {text}" for name, text in html.entities.html5.items()]
    lines += [f"{chr(c)}  {unicodedata.name(chr(c), '?')}\t{chr(c) * 3}" for c in range(0xA0, 0x3000, 3)]
    return lines


def real_text() -> str:
    return (STDLIB / "textwrap.py").read_text(encoding="utf-8")[:4000]


# --------------------------------------------------------------------------- tokenizer


def test_autotokenizer_gives_exactly_the_sentencepiece_ids_on_real_lines(code_build, tmp_path):
    out, _ = code_build
    model = str(out / "tokenizer" / "tokenizer.model")
    save_tokenizer_folder(sentencepiece_to_tokenizer(Path(model).read_bytes()), special_ids(model), str(tmp_path), SEQ_LEN)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    sp = spm.SentencePieceProcessor(model_file=model)
    lines = real_lines()
    assert len(lines) > 3000 and any(ord(c) > 127 for line in lines for c in line)
    # whole passages too: newlines, indentation runs, and control-token look-alikes sentencepiece never matches
    texts = lines + ["\n".join(lines[i:i + 40]) for i in range(0, len(lines), 40)]
    texts += ["<s>x</s> <pad><unk>", "\t\t  \u00a0 mixed   whitespace  \n\n\n", "emoji \U0001f642 and CJK \u65e5\u672c"]
    differ = [t for t in texts if hf(t)["input_ids"] != sp.encode(t)]
    assert differ == []
    assert hf(texts[0], add_special_tokens=True)["input_ids"] == sp.encode(texts[0])  # nothing is added around text
    names = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0, "unk_token_id": 1, "mask_token_id": 4}
    assert {k: getattr(hf, k) for k in names} == names
    assert hf.decode(sp.encode(real_text())) == real_text()


# --------------------------------------------------------------------------- export


def _strata_logits(run, ids):
    loaded = load_model(str(run))
    with torch.no_grad():
        return loaded.model(torch.tensor([ids]))[0]


def test_transformers_loads_the_gpt_export_with_strata_logits(code_build, clm_run, clm_export):
    out, run = clm_run
    built = code_build[1]
    names = {p.name for p in clm_export.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= names
    tokenizer = transformers.AutoTokenizer.from_pretrained(clm_export)
    model = transformers.AutoModelForCausalLM.from_pretrained(clm_export)
    assert type(model).__name__ == "GPT2LMHeadModel"
    ids = tokenizer(real_text())["input_ids"][:SEQ_LEN]
    assert len(ids) == SEQ_LEN
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor([ids])).logits
    assert torch.allclose(theirs, _strata_logits(run, ids), atol=1e-4, rtol=0)
    card = (clm_export / "README.md").read_text()
    manifest_sha = __import__("hashlib").sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert manifest_sha in card and "causal language modelling" in card and "| Github |" in card
    assert f"tokens seen: {30 * 8 * SEQ_LEN:,}" in card and "## Validation (step 30)" in card
    tokenizer = built["tokenizer"]
    assert f"config hash `{built['config_hash']}`" in card
    assert f"tokenizer: {tokenizer['type']}, {tokenizer['vocab_size']} ids, sha256 `{tokenizer['sha256']}`" in card
    assert f"every document ended with EOS (`{tokenizer['special_ids']['eos']}`)" in card


def test_a_run_recorded_before_model_config_loads_its_preset_sized_by_the_manifest(code_build, clm_run, tmp_path):
    _, run = clm_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    record = json.loads((old / "run.json").read_text())
    del record["model_config"]  # as runs recorded it before model_config
    (old / "run.json").write_text(json.dumps(record))
    model, _, _ = run_model(old)
    assert model.config.vocab_size == code_build[1]["tokenizer"]["vocab_size"]
    current, _, _ = run_model(run)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), current.state_dict().values()))


def test_transformers_loads_the_mlm_export_with_strata_logits(code_build, tmp_path):
    out, _ = code_build
    train(run_config(out, tmp_path / "run", objective="mlm", steps=3))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "hf")
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM"
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tokenizer(real_text())["input_ids"][:SEQ_LEN]
    ids[10] = tokenizer.mask_token_id
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor([ids])).logits
    assert torch.allclose(theirs, _strata_logits(tmp_path / "run", ids), atol=1e-4, rtol=0)
    assert "masked language modelling" in (tmp_path / "hf" / "README.md").read_text()


# --------------------------------------------------------------------------- import


def test_init_from_the_export_starts_at_the_exported_models_loss(clm_run, clm_export, tmp_path):
    out, _ = clm_run
    cfg = run_config(out, tmp_path / "again", steps=2, init_from=str(clm_export))
    train(cfg)
    first = next(json.loads(line) for line in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines())
    assert first["step"] == 1
    batch = next(StreamingWindows(str(out), seq_len=SEQ_LEN, extra_token=True, global_batch=cfg.batch_size,
                                  seed=cfg.seed, end_step=1).batches())
    tokens = torch.as_tensor(batch["tokens"], dtype=torch.long)
    model = transformers.AutoModelForCausalLM.from_pretrained(clm_export)
    with torch.no_grad():
        logits = model(input_ids=tokens[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    assert first["loss"] == pytest.approx(float(loss), abs=1e-5)


def test_init_from_refuses_another_objective_or_vocabulary(clm_export, shard_build, code_build, tmp_path):
    with pytest.raises(ConfigError, match="holds a clm model"):
        train(run_config(code_build[0], tmp_path / "a", objective="mlm", init_from=str(clm_export)))
    with pytest.raises(ConfigError, match="vocabulary of 512 ids, the build's tokenizer 400"):
        train(run_config(shard_build[0], tmp_path / "b", init_from=str(clm_export)))
    with pytest.raises(ConfigError, match="no config.json"):
        train(run_config(code_build[0], tmp_path / "c", init_from=str(tmp_path)))


def test_a_build_tokenizes_with_a_hf_byte_level_bpe(shard_build, corpus_config_dict, tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from strata.pipeline.build import run_build

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(real_lines(), trainer)
    (tmp_path / "gpt2ish").mkdir()
    tokenizer.save(str(tmp_path / "gpt2ish" / "tokenizer.json"))
    out = tmp_path / "out"
    shutil.copytree(shard_build[0], out)  # the curate stage is kept: same inputs and settings
    config = dict(corpus_config_dict, tokenizer={"model": str(tmp_path / "gpt2ish")},
                  shards={"block_tokens": 64, "val_fraction": 0.1, "target_bytes": 1000})
    manifest = run_build(parse_config(config), str(out), "shards", IN_MEMORY)
    info = manifest["tokenizer"]
    assert info["type"] == "hf-bpe" and info["path"] == "tokenizer/hf/tokenizer.json"
    assert info["vocab_size"] == tokenizer.get_vocab_size() and info["special_ids"]["eos"] == 0
    assert main(["verify", str(out)]) == 0
    stream = StreamingWindows(str(out), seq_len=32, extra_token=True, global_batch=2, seed=0, end_step=1)
    assert stream.token_dtype == np.uint16  # 600 ids
    # a block holds whole documents as the HF tokenizer encodes them, each ended by EOS
    import io
    import tarfile

    import pyarrow.dataset as pads

    texts = {r["doc_id"]: r["text"] for r in pads.dataset(str(out / "curated"), format="parquet")
             .to_table(columns=["doc_id", "text"]).to_pylist()}
    tar_path = next((out / "shards").glob("*/train-000000.tar"))
    with tarfile.open(tar_path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    stream_tokens, doc_ids = [], []
    for key in sorted({name.split(".")[0] for name in members}):
        meta = json.loads(members[f"{key}.json"])
        tokens = np.load(io.BytesIO(members[f"{key}.tokens.npy"]))
        assert tokens.dtype == np.uint16
        stream_tokens += tokens.tolist()
        doc_ids += meta["doc_ids"][1:] if meta["first_continues"] else meta["doc_ids"]
    expected = [i for d in doc_ids for i in tokenizer.encode(texts[d]).ids + [0]]
    assert len(doc_ids) > 3 and stream_tokens == expected


# --------------------------------------------------------------------------- generate


def test_kv_cache_greedy_equals_no_cache_and_transformers_and_seeds_reproduce(clm_run, clm_export):
    _, run = clm_run
    loaded = load_model(str(run))
    prompt = prompt_ids(loaded.encoder, "def wrap(text, width")
    cached = generate_ids(loaded.model, prompt, 20, temperature=0)
    assert cached == generate_ids(loaded.model, prompt, 20, temperature=0, use_cache=False)
    model = transformers.AutoModelForCausalLM.from_pretrained(clm_export)
    theirs = model.generate(torch.tensor([prompt]), max_new_tokens=len(cached), do_sample=False, eos_token_id=None,
                            pad_token_id=0)
    assert theirs[0, len(prompt):].tolist() == cached
    sampled = [generate_ids(loaded.model, prompt, 20, temperature=0.9, top_k=50, top_p=0.95, seed=s) for s in (3, 3, 4)]
    assert sampled[0] == sampled[1] and sampled[0] != cached
    assert generate_ids(loaded.model, prompt, 20, temperature=1.0, top_k=1, seed=5) == cached  # top-1 is greedy


def test_generate_command_prints_the_same_text_for_a_run_and_its_export(clm_run, clm_export, capsys):
    _, run = clm_run
    args = ["--prompt", "import ", "--max-new-tokens", "12", "--seed", "7", "--top-p", "0.9"]
    assert main(["generate", str(run), *args]) == 0
    from_run = capsys.readouterr().out
    assert main(["generate", str(clm_export), *args]) == 0
    assert capsys.readouterr().out == from_run and from_run.startswith("import ")


# --------------------------------------------------------------------------- eval


def test_eval_on_the_build_gives_the_trainers_validation_figures(clm_run, clm_export, capsys):
    out, run = clm_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = {r["category"]: r for r in rows if r["kind"] == "val"}
    assert main(["eval", str(run), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["loss"] == pytest.approx(val["all"]["loss"], abs=1e-6)
    assert figures["perplexity"] == pytest.approx(val["all"]["perplexity"], rel=1e-6)
    for category, r in figures["categories"].items():
        assert r["loss"] == pytest.approx(val[category]["loss"], abs=1e-6) and r["tokens"] == val[category]["tokens"]
        assert 0 < r["bpb"] < r["loss"] / np.log(2)  # a token stands for more than one byte
    # the export, through transformers' weights, on the same blocks and settings
    exported = eval_build(load_model(str(clm_export)), str(out), seq_len=SEQ_LEN, batch_size=8, eval_batches=2, seed=1)
    assert exported["all"]["loss"] == pytest.approx(val["all"]["loss"], abs=1e-5)


def test_eval_on_jsonl_files_is_reproduced_by_transformers(clm_export, tmp_path):
    docs = [real_text(), (STDLIB / "string.py").read_text(encoding="utf-8")[:3000]]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    figures = eval_files(load_model(str(clm_export)), [str(tmp_path / "docs.jsonl")], seq_len=SEQ_LEN)
    # the recipe of train/evaluate.py: ids + EOS per document, packed, windows of S + 1 every S tokens
    tokenizer = transformers.AutoTokenizer.from_pretrained(clm_export)
    model = transformers.AutoModelForCausalLM.from_pretrained(clm_export)
    stream = [i for t in docs for i in tokenizer(t)["input_ids"] + [tokenizer.eos_token_id]]
    nats = count = 0.0
    for start in range(0, len(stream), SEQ_LEN):
        window = torch.tensor([stream[start:start + SEQ_LEN + 1]])
        if window.shape[1] < 2:
            continue
        with torch.no_grad():
            logits = model(input_ids=window[:, :-1]).logits[0]
        nats += float(torch.nn.functional.cross_entropy(logits, window[0, 1:], reduction="sum"))
        count += window.shape[1] - 1
    assert figures["docs"]["tokens"] == count
    assert figures["all"]["loss"] == pytest.approx(nats / count, abs=1e-4)
    # the bytes the targets stand for: all the text but the first token's, which nothing predicts
    text_bytes = sum(len(t.encode()) for t in docs) - len(tokenizer.decode(stream[:1]).encode())
    assert figures["all"]["bpb"] == pytest.approx(nats / np.log(2) / text_bytes, rel=1e-4)
