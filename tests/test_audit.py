"""`strata audit`: every figure of a build's and a run's audit against what the generated
corpus planted, worked out here from the generator's records, the tokenizer and the
DESIGN contracts (doc_id, val split, smallest doc_id survives); the HTML report in
headless Chromium; manifests of another schema version."""

import json
import math
import re
import shutil
import subprocess
from collections import Counter

import pytest
import sentencepiece as spm
from PIL import Image

from strata.cli import main
from strata.manifests.manifest import SCHEMA_VERSION, Manifest

from conftest import JUNK, MALFORMED, SMALL_SHARDS
from corpus import kept_documents
from runs import GLOBAL_BATCH, SEQ_LEN, make_run

CHROMIUM = shutil.which("chromium")
# What the filters make of the planted junk (conftest.JUNK, in order): symbols instead of
# words, two words, one line thirty times.
QUARANTINE_REASONS = [*MALFORMED, "invalid_utf8", "truncated_compressed_file"]
TARGET_SHARES = {"ArXiv": 0.3, "Books": 0.3, "Pile-CC": 0.4}  # weights 0.3 and 0.4, Books the rest (epochs)


def log_histogram(values: dict[str, list[int]]) -> dict:
    """values per category -> bins of a quarter octave, as audit documents them."""
    bins = {c: [math.floor(4 * math.log2(v)) for v in vs] for c, vs in values.items()}
    low, high = min(min(b) for b in bins.values()), max(max(b) for b in bins.values())
    counts = {c: [b.count(k) for k in range(low, high + 1)] for c, b in sorted(bins.items())}
    return {"bins_per_octave": 4, "edges": [round(2 ** (k / 4), 2) for k in range(low, high + 2)], "counts": counts}


@pytest.fixture(scope="module")
def expected(shard_build, planted):
    """Every figure of `audit OUT --json`, from the planted corpus."""
    out, _ = shard_build
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer" / "tokenizer.model"))
    kept = kept_documents(planted)
    for d in kept:
        d["tokens"] = len(sp.encode(d["text"])) + 1  # + EOS
        d["val"] = int(d["doc_id"][:8], 16) / 2**32 < SMALL_SHARDS["val_fraction"]
    by_category = {name: [d for d in kept if d["category"] == name] for name in sorted(TARGET_SHARES)}
    categories = {}
    for name, mine in by_category.items():
        tokens = sum(d["tokens"] for d in mine if not d["val"])
        nbytes = sum(len(d["text"].encode()) for d in mine)
        categories[name] = {
            "target_share": TARGET_SHARES[name], "docs": len(mine), "bytes": nbytes, "tokens": tokens,
            "val_tokens": sum(d["tokens"] for d in mine if d["val"]),
            "shards": len(list((out / "shards" / name).glob("*.tar"))),
            "tokens_per_byte": sum(d["tokens"] - 1 for d in mine) / nbytes,
        }
    total = sum(c["tokens"] for c in categories.values())
    for c in categories.values():
        c["realized_share"] = c["tokens"] / total
    duplicates = Counter(kind for kind, _, _ in planted["copies"])
    pile_removed = {
        "validate": dict.fromkeys(sorted(QUARANTINE_REASONS), 1),
        # Language ID comes first: the symbol junk reads as German, "too short." as English
        # with a low score; the repeated spam line is left to the filters.
        "language": {"language:low_score": 1, "language:not_in_languages": 3},
        "filter": {"gopher_repetition:dup_line_frac": 1},
        "exact_dedup": {"exact_duplicate": duplicates["exact"]},
        "near_dedup": {"near_duplicate": duplicates["near"]},
    }
    pile = [d for d in planted["documents"] if d["source"] == "pile"]
    books = [d for d in planted["documents"] if d["source"] == "books"]
    return {
        "kind": "build",
        "records": len(planted["documents"]) + len(JUNK) + 2 + len(QUARANTINE_REASONS),
        "fates": {"kept": len(kept), "dropped": len(JUNK) + 2, "duplicate": len(planted["copies"]),
                  "quarantined": len(QUARANTINE_REASONS)},
        "categories": categories,
        "sources": {
            "books": {"records": len(books), "kept": len(books), "quarantined": 0, "dropped": 0,
                      "exact_duplicates": 0, "near_duplicates": 0, "removed": {}},
            "pile": {"records": len(pile) + len(JUNK) + 2 + len(QUARANTINE_REASONS),
                     "kept": sum(d["source"] == "pile" for d in kept), "quarantined": len(QUARANTINE_REASONS),
                     "dropped": len(JUNK) + 2, "exact_duplicates": duplicates["exact"],
                     "near_duplicates": duplicates["near"], "removed": pile_removed},
        },
        "stages": {stage: {"removed": sum(r.values()), "reasons": r} for stage, r in pile_removed.items()},
        "languages": {"en": {"docs": len(planted["documents"]) + 2, "kept": len(kept)},
                      "de": {"docs": 2, "kept": 0}, "fr": {"docs": 1, "kept": 0}},
        "pii": dict.fromkeys(["email", "ip", "phone"], {"documents": 0, "matches": 0}),  # prose without any
        "decontamination": {},  # no eval sets configured
        "lengths": {
            "bytes": log_histogram({c: [len(d["text"].encode()) for d in docs] for c, docs in by_category.items()}),
            "tokens": log_histogram({c: [d["tokens"] - 1 for d in docs] for c, docs in by_category.items()}),
        },
    }


def assert_same(actual, expected, where="audit") -> None:
    """Deep equality; floats to a relative 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9), where
    else:
        assert actual == expected, where


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(map(str, args)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def audit_json(capsys, path, *extra) -> dict:
    code, out, err = run_cli(capsys, "audit", path, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_every_figure_of_a_build_audit_is_the_planted_one(shard_build, expected, capsys):
    out, manifest = shard_build
    audit = audit_json(capsys, out)
    assert (audit["build"], audit["schema_version"], audit["config_hash"]) == (
        str(out), manifest["schema_version"], manifest["config_hash"])
    for key, value in expected.items():
        assert_same(audit[key], value, key)
    assert list(audit["stages"]) == ["validate", "language", "filter", "exact_dedup", "near_dedup"]  # pipeline order


def test_the_terminal_table_shows_the_mixture_sources_and_reasons(shard_build, expected, capsys):
    out, _ = shard_build
    code, text, _ = run_cli(capsys, "audit", out)
    assert code == 0
    arxiv = expected["categories"]["ArXiv"]
    assert re.search(rf"^ArXiv\s+30\.0%\s+{100 * arxiv['realized_share']:.1f}%\s+15\s", text, re.M)
    assert re.search(r"^pile\s+53\s+35\s+8\s+5\s+3\s+2$", text, re.M)
    assert re.search(r"^language\s+language:low_score\s+1$", text, re.M)
    assert "en 47 (kept 40)" in text


@pytest.fixture(scope="module")
def run(shard_build, tmp_path_factory):
    """12 steps on two ranks, and metrics where a resumed run logged step 10 again."""
    out, _ = shard_build
    run = tmp_path_factory.mktemp("run")
    metrics = [{"kind": "train", "step": s, "loss": 6.0 - s / 10, "lr": 1e-3, "tokens": s * 132, "tokens_per_s": 1e3,
                "time": 0.0} for s in range(12)]
    for step, loss in ((0, 6.0), (5, 5.0), (10, 4.5), (10, 4.0)):  # the second step 10 wins
        metrics += [{"kind": "val", "step": step, "category": c, "loss": loss + i / 10, "perplexity": 1.0, "tokens": 64}
                    for i, c in enumerate(["ArXiv", "Books", "Pile-CC", "all"])]
    return run, make_run(out, run, steps=12, world_size=2, metrics=metrics)


def test_every_figure_of_a_run_audit_is_the_stream_s(shard_build, expected, run, capsys):
    out, manifest = shard_build
    run_dir, batches = run
    windows = Counter(c for b in batches for c in b["category"])
    audit = audit_json(capsys, run_dir)
    window = SEQ_LEN + 1
    total = sum(windows.values()) * window
    assert sum(windows.values()) == 12 * GLOBAL_BATCH
    assert {k: audit[k] for k in ("kind", "build", "objective", "seq_len", "global_batch", "window_tokens")} == {
        "kind": "run", "build": str(out), "objective": "clm", "seq_len": SEQ_LEN, "global_batch": GLOBAL_BATCH,
        "window_tokens": window}
    assert (audit["steps"], audit["first_step"], audit["last_step"], audit["windows"], audit["tokens"]) == (
        12, 0, 11, 12 * GLOBAL_BATCH, total)
    shares = json.loads((run_dir / "run.json").read_text())["shares"]
    for name, train_tokens in ((c, expected["categories"][c]["tokens"]) for c in TARGET_SHARES):
        assert_same(audit["categories"][name], {
            "share": shares[name], "tokens": windows[name] * window, "realized_share": windows[name] * window / total,
            "train_tokens": train_tokens, "epochs": windows[name] * window / train_tokens,
            "val_loss": 4.0 + sorted(TARGET_SHARES).index(name) / 10, "val_step": 10,
        }, name)
    assert_same(audit["val_loss"]["Books"], [[0, 6.1], [5, 5.1], [10, 4.1]])
    assert_same(audit["train_loss"], [[s, 6.0 - s / 10] for s in range(12)])
    code, text, _ = run_cli(capsys, "audit", run_dir)
    assert code == 0 and re.search(rf"^Books\s+{100 * shares['Books']:.1f}%", text, re.M)


def test_an_audit_reads_a_build_and_a_run_on_s3(shard_build, run, s3, capsys):
    out, _ = shard_build
    run_dir, _ = run
    s3.put(str(out), "strata-test/", recursive=True)
    s3.put(str(run_dir), "strata-test/", recursive=True)
    remote = audit_json(capsys, f"s3://strata-test/{out.name}")
    assert remote == {**audit_json(capsys, out), "build": f"s3://strata-test/{out.name}"}
    remote = audit_json(capsys, f"s3://strata-test/{run_dir.name}", "--data", out)
    assert remote == {**audit_json(capsys, run_dir), "run": f"s3://strata-test/{run_dir.name}"}


def test_a_run_on_another_build_is_refused_by_name(shard_build, run, tmp_path, capsys):
    run_dir, _ = run
    other = tmp_path / "other"
    other.mkdir()
    manifest = Manifest.read(str(shard_build[0]))
    for c in manifest.categories.values():
        for s in c.shards:
            s.path = s.path.replace("shards/", "elsewhere/")
    manifest.write(str(other))
    code, _, err = run_cli(capsys, "audit", run_dir, "--data", other)
    assert code == 1 and "does not have" in err and "--data" in err


# --------------------------------------------------------------------------- old manifests


@pytest.mark.parametrize("version", [0, None, "1"])
@pytest.mark.parametrize("command", ["audit", "verify"])
def test_a_manifest_of_another_schema_version_fails_with_a_clear_message(shard_build, tmp_path, capsys, command,
                                                                         version):
    out, _ = shard_build
    old = tmp_path / "old"
    shutil.copytree(out, old, ignore=shutil.ignore_patterns("shards"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("schema_version")
    if version is not None:
        manifest["schema_version"] = version
    (old / "manifest.json").write_text(json.dumps(manifest))
    code, text, err = run_cli(capsys, command, old)
    assert code == 1 and text == ""
    assert f"manifest schema version {version!r}; this strata 0.1.0 reads version {SCHEMA_VERSION}" in err
    assert str(old / "manifest.json") in err


# --------------------------------------------------------------------------- the HTML report


PROBE = """<script>
document.body.dataset.svgBoxes = JSON.stringify(
  [...document.querySelectorAll("svg")].map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; }));
</script>"""


def chromium(page, *flags) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0", *flags,
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def console_messages(page) -> list[str]:
    """What the page logged to the console (errors included) while Chromium loaded it."""
    return [line for line in chromium(page, "--dump-dom").stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def rendered_svg_boxes(page, tmp_path) -> list[list[float]]:
    """[width, height] of every SVG as laid out, from a copy of the page with a probe script."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(probe, "--dump-dom").stdout
    found = re.search(r'data-svg-boxes="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("what", ["build", "run"])
def test_the_html_report_loads_cleanly_in_chromium_with_charts_of_size(shard_build, run, tmp_path, capsys, what):
    page = tmp_path / f"{what}.html"
    code, text, _ = run_cli(capsys, "audit", shard_build[0] if what == "build" else run[0], "--html", page)
    assert code == 0 and f"report: {page}" in text
    html = page.read_text()
    links = re.findall(r"""(?:src|href)=["']([^"']*)""", html)
    assert "<script" not in html and all(link.startswith("data:") for link in links)  # self-contained
    svgs = html.count("<svg")
    assert svgs >= (5 if what == "build" else 4)

    broken = tmp_path / "broken.html"  # the probe of console errors works
    broken.write_text(html.replace("</body>", "<script>undefinedFunction()</script></body>"))
    assert any("undefinedFunction" in m for m in console_messages(broken))
    assert console_messages(page) == []

    boxes = rendered_svg_boxes(page, tmp_path)
    assert len(boxes) == svgs and all(w > 100 and h > 50 for w, h in boxes)

    shot = tmp_path / f"{what}.png"
    chromium(page, f"--screenshot={shot}", "--window-size=1000,2400", "--hide-scrollbars")
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 16) or []
        inked = sum(n for n, colour in colours if colour != (255, 255, 255))
        assert inked > 0.02 * pixels.width * pixels.height  # tables and charts, not a blank page
        assert len(colours) > 20
