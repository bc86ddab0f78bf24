"""Build a Pile-style benchmark corpus of real text, with planted near-duplicates.

    python tests/bench/make_corpus.py [--mb 60] [--out out/bench/corpus-60mb] [--seed 7] [--files 16]

Writes, under --out:

    part-NNN.jsonl.zst   records {"id": ..., "text": ..., "meta": {"pile_set_name": ...}}
    planted.json         planted near-duplicate pairs (true word-5-gram Jaccard) and exact-dup groups
    docs.tsv             id, file, record index, category, bytes of every record
    strata.yaml          a strata build config for the corpus
    corpus.json          summary (sizes, counts per category); written last, marks the corpus complete

The text is real prose and code found on a Debian machine: documentation packages are
installed with apt-get (when run as root), then harvested from man pages (English, German,
French, Italian, Polish), Perl's POD, the Python and Debian policy manuals, Vim's help,
/usr/share/doc, and the running Python's standard library (docstrings as prose, modules as
code). The result depends on what the machine has installed, but is deterministic for a
given machine and seed.

Planted near-duplicates: a base document gets a perturbed copy (words substituted or
deleted at random positions) whose Jaccard similarity to the base is computed exactly on
sets of word 5-gram shingles, words being the lowercased, whitespace-separated tokens.
Pairs are bucketed [0.7, 0.8) and [0.8, 1.0]. Exact duplicates are planted in groups of 2-3.
Outside the planted records, the corpus holds no two records with the same text.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT_ROOT = REPO / "out" / "bench"

# Debian packages whose files are harvested; any the archive lacks are skipped.
DEBIAN_PACKAGES = [
    "man-db",
    "manpages",
    "manpages-dev",
    "manpages-de",
    "manpages-fr",
    "manpages-it",
    "manpages-pl",
    "perl-doc",
    "debian-policy",
    "vim-doc",
    "python3-doc",
    "gnu-standards",
    "bash-doc",
    "debian-reference-en",
]

# Category -> share of the corpus bytes. Whatever a category cannot fill goes to the
# English man pages, the largest pool.
SHARES = {
    "StackExchange": 0.24,  # English man pages
    "Wikipedia (en)": 0.14,  # Python manual (reST sources)
    "Books3": 0.10,  # Perl POD manual
    "Gutenberg (PG-19)": 0.08,  # Vim help
    "Pile-CC": 0.08,  # READMEs, NEWS, changelogs and manuals under /usr/share/doc
    "EuroParl": 0.14,  # man pages in de, fr, it, pl
    "PhilPapers": 0.06,  # docstrings of the Python standard library
    "Github": 0.16,  # Python standard library modules
}
FALLBACK_CATEGORY = "StackExchange"
PROSE_EN = ("StackExchange", "Wikipedia (en)", "Books3", "Gutenberg (PG-19)", "Pile-CC", "PhilPapers")
PILE_EPOCHS = {  # from the Pile paper (shared/reference/pile-components.tsv)
    "Pile-CC": 1.0,
    "Books3": 1.5,
    "Github": 1.0,
    "StackExchange": 2.0,
    "Gutenberg (PG-19)": 2.5,
    "Wikipedia (en)": 3.0,
    "EuroParl": 2.0,
    "PhilPapers": 2.0,
}

MIN_DOC_BYTES = 400
DOC_BYTES = (2_000, 20_000)
NGRAM = 5
BUCKETS = {"0.7-0.8": (0.70, 0.80), "0.8-1.0": (0.80, 1.0)}


# --------------------------------------------------------------------------- packages


def ensure_debian_docs(packages=DEBIAN_PACKAGES) -> None:
    """apt-get install the documentation packages that are missing and that exist."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        print("make_corpus: no apt-get here; harvesting whatever text is installed", file=sys.stderr)
        return
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        print(f"make_corpus: not root, cannot install {missing}; harvesting what is installed", file=sys.stderr)
        return
    print(f"make_corpus: apt-get install {' '.join(missing)}", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    available = [p for p in missing if _candidate(p)]
    if available:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *available],
            check=False,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    skipped = sorted(set(missing) - set(available))
    if skipped:
        print(f"make_corpus: not in the archive, skipped: {skipped}", file=sys.stderr)


def _installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def _candidate(pkg: str) -> bool:
    r = subprocess.run(["apt-cache", "policy", pkg], capture_output=True, text=True)
    m = re.search(r"Candidate:\s*(\S+)", r.stdout)
    return bool(m and m.group(1) != "(none)")


# --------------------------------------------------------------------------- reading files


def read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if b"\x00" in raw[:4096]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def files_under(root: str | Path, pattern: str) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    seen, out = set(), []
    for p in sorted(root.rglob(pattern)):
        try:
            if not p.is_file():
                continue
            real = p.resolve()
        except OSError:
            continue
        if real in seen:
            continue
        seen.add(real)
        out.append(p)
    return out


# --------------------------------------------------------------------------- markup stripping

_ROFF_SPECIAL = {
    "em": "\u2014", "en": "\u2013", "aq": "'", "dq": '"', "lq": "\u201c", "rq": "\u201d",
    "oq": "\u2018", "cq": "\u2019", "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae", "hy": "-",
    "mi": "-", "pl": "+", "mu": "\u00d7", "di": "\u00f7", "<=": "\u2264", ">=": "\u2265",
    "->": "\u2192", "<-": "\u2190", "Fo": "\u00ab", "Fc": "\u00bb", "fo": "\u2039", "fc": "\u203a",
    "ti": "~", "ha": "^", "rs": "\\", "at": "@", "sh": "#", "Do": "$", "ss": "\u00df",
    ':a': "\u00e4", ':o': "\u00f6", ':u': "\u00fc", ':A': "\u00c4", ':O': "\u00d6", ':U': "\u00dc",
}
_FONT_MACROS = {"B", "I", "BR", "RB", "BI", "IB", "IR", "RI", "SM", "SB", "Nm", "Nd", "Ar", "Fl", "Xr",
                "Pa", "Ev", "Va", "Fn", "Cm", "Em", "Sy", "Li", "Dv", "Er", "Ic", "Ql", "Dq", "Sq", "Op"}
_BREAK_MACROS = {"PP", "P", "LP", "IP", "TP", "sp", "br", "HP", "Pp", "Bl", "El", "It", "Bd", "Ed", "RS", "RE",
                 "nf", "fi", "EX", "EE", "TQ", "ne", "in", "ti"}
_HEAD_MACROS = {"SH", "SS", "Sh", "Ss"}


def _roff_inline(s: str) -> str:
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = re.sub(r"\\\*(\[[^\]]*\]|\(..|.)", "", s)  # string registers
    s = re.sub(r"\\\((..)", lambda m: _ROFF_SPECIAL.get(m.group(1), ""), s)
    s = re.sub(r"\\\[([^\]]*)\]", lambda m: _ROFF_SPECIAL.get(m.group(1), ""), s)
    s = re.sub(r"\\s[+-]?\d", "", s)
    s = re.sub(r"\\[nk](\[[^\]]*\]|\(..|.)", "", s)
    s = re.sub(r"\\[hvwlLoDbxXNRSZ]'[^']*'", "", s)
    s = s.replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ").replace("\\~", " ")
    s = re.sub(r"\\[&c%|^/,:)0dut!{}]", "", s)
    s = re.sub(r"\\(.)", r"\1", s)
    return s


def _macro_args(rest: str) -> str:
    args = re.findall(r'"([^"]*)"|(\S+)', rest)
    return " ".join(a or b for a, b in args)


def strip_roff(src: str) -> str | None:
    lines = src.splitlines()
    if any(l.startswith(".so ") for l in lines[:5]) and len(lines) < 10:
        return None  # a link to another page
    paras: list[str] = []
    cur: list[str] = []

    def flush():
        if cur:
            text = " ".join(" ".join(cur).split())
            if text:
                paras.append(text)
            cur.clear()

    for line in lines:
        if line.startswith(('.\\"', "'\\\"", '\\"', ".\\#")) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.'](\S+)\s*(.*)", line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2)
            if name in _HEAD_MACROS:
                flush()
                head = _roff_inline(_macro_args(rest)).strip()
                if head:
                    paras.append(head.title() if head.isupper() else head)
            elif name in _FONT_MACROS:
                cur.append(_roff_inline(_macro_args(rest)))
            elif name in _BREAK_MACROS:
                flush()
                if name in ("IP", "It") and rest:
                    arg = _roff_inline(_macro_args(rest)).strip()
                    if arg and not re.fullmatch(r"[\d.\\()\w]{0,3}", arg):
                        cur.append(arg)
            # anything else (.TH, .de, .ds, .if, tbl, eqn ...) is dropped
            continue
        if not line.strip():
            flush()
            continue
        cur.append(_roff_inline(line))
    flush()
    return "\n\n".join(paras)


_POD_CODE = re.compile(r"[BCIFLSEXZ](<<+)\s(.*?)\s(>>+)|[BCIFLSEXZ]<([^<>]*)>")


def _pod_inline(s: str) -> str:
    def repl(m: re.Match) -> str:
        inner = m.group(2) if m.group(2) is not None else m.group(4)
        if m.group(0).startswith("L") and "|" in inner:
            inner = inner.split("|", 1)[0]
        if m.group(0).startswith("E"):
            return {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}.get(inner, "")
        if m.group(0).startswith(("Z", "X")):
            return ""
        return inner

    for _ in range(3):
        s2 = _POD_CODE.sub(repl, s)
        if s2 == s:
            break
        s = s2
    return s


def strip_pod(src: str) -> str:
    out, in_pod, skip_block = [], True, False
    for block in re.split(r"\n\s*\n", src):
        first = block.lstrip("\n")
        if first.startswith("="):
            cmd, _, rest = first.partition(" ")
            cmd = cmd.split("\n")[0]
            if cmd == "=cut":
                in_pod = False
            elif cmd in ("=pod", "=encoding"):
                in_pod = True
            elif cmd == "=begin":
                skip_block = True
            elif cmd == "=end":
                skip_block = False
            elif cmd.startswith("=head") or cmd == "=item":
                in_pod = True
                text = _pod_inline(rest.strip())
                if text and text not in ("*", "-"):
                    out.append(" ".join(text.split()))
            continue
        if not in_pod or skip_block:
            continue
        if block[:1] in (" ", "\t"):
            out.append(block.strip("\n"))  # verbatim (code) paragraph, kept as is
        else:
            out.append(" ".join(_pod_inline(block).split()))
    return "\n\n".join(p for p in out if p.strip())


def strip_rst(src: str) -> str:
    out = []
    for block in re.split(r"\n\s*\n", src):
        b = block.strip("\n")
        if not b.strip():
            continue
        if re.match(r"\s*\.\. ", b):  # directives, comments, targets
            continue
        if re.fullmatch(r"[=\-~^*#+`'\"]{3,}", b.strip()):
            continue
        b = re.sub(r"^[=\-~^*#+`'\"]{3,}\s*$", "", b, flags=re.M)
        b = re.sub(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", b)
        b = re.sub(r"`([^`<]*?)\s*<[^>]*>`_+", r"\1", b)
        b = b.replace("``", "").replace("**", "")
        if b[:1] in (" ", "\t"):
            out.append(b)
        else:
            out.append(" ".join(b.split()))
    return "\n\n".join(out)


def strip_vimhelp(src: str) -> str:
    src = re.sub(r"\*([^*\s]+)\*", "", src)  # tags
    src = re.sub(r"\|([^|\s]+)\|", r"\1", src)  # links
    src = re.sub(r"^[=-]{10,}$", "", src, flags=re.M)
    src = re.sub(r"\s+vim:[^\n]*$", "", src)
    return src


def docstrings(path: Path) -> str | None:
    src = read_text(path)
    if not src:
        return None
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return None
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            d = ast.get_docstring(node)
            if d and len(d.split()) >= 12:
                parts.append(d.strip())
    return "\n\n".join(parts) if parts else None


# --------------------------------------------------------------------------- sources


def source_files() -> dict[str, list[tuple[Path, callable]]]:
    """Category -> [(file, text extractor)], in a fixed order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lib_py = [
        p for p in files_under(stdlib, "*.py")
        if not any(part in ("site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__") for part in p.parts)
    ]
    # Perl's own pages are also in the POD (Books3): leave them out here.
    man_en = [
        p for d in sorted(Path("/usr/share/man").glob("man*")) for p in files_under(d, "*")
        if not (p.name.startswith("perl") or re.search(r"\.3(perl|pm)(\.gz)?$", p.name))
        # thousands of generated gcloud pages, alpha/beta/GA copies of each other: natural
        # near-duplicates would blur the planted ones
        and not p.name.startswith("gcloud")
    ]
    # more code: Debian's Python packages (a different pool from the standard library)
    dist_py = [
        p for p in files_under("/usr/lib/python3/dist-packages", "*.py")
        if not any(part in ("test", "tests", "__pycache__") for part in p.parts)
    ]
    man_l10n = [p for lang in ("de", "fr", "it", "pl") for p in files_under(f"/usr/share/man/{lang}", "*")]
    pods = files_under("/usr/share/perl", "*.pod")
    rst = files_under("/usr/share/doc", "*.rst.txt") + files_under("/usr/share/doc", "*.rst") + files_under(
        "/usr/share/doc", "*.rst.gz"
    )
    vim = files_under("/usr/share/vim", "*.txt")
    misc = [
        p for p in files_under("/usr/share/doc", "*")
        if re.search(r"(README|NEWS|changelog|HISTORY|FAQ|TODO|\.txt)(\.gz)?$|\.md(\.gz)?$", p.name)
        and "html" not in p.parts and "_sources" not in p.parts and not p.name.endswith(".rst.txt")
    ]
    ident = lambda s: s  # noqa: E731
    return {
        "StackExchange": [(p, strip_roff) for p in man_en],
        "EuroParl": [(p, strip_roff) for p in man_l10n],
        "Books3": [(p, strip_pod) for p in pods],
        "Wikipedia (en)": [(p, strip_rst) for p in rst],
        "Gutenberg (PG-19)": [(p, strip_vimhelp) for p in vim],
        "Pile-CC": [(p, ident) for p in misc],
        # docstrings and code from disjoint halves of the standard library, so that no code
        # record contains a docstring record
        "PhilPapers": [(p, None) for p in lib_py if _half(p) == 0],
        "Github": [(p, ident) for p in lib_py if _half(p) == 1] + [(p, ident) for p in dist_py],
    }


def _half(p: Path) -> int:
    return hashlib.sha1(p.name.encode()).digest()[0] % 2


def split_docs(text: str, rng: random.Random) -> list[str]:
    """Split text at paragraph boundaries into documents of about 2-20 KB."""
    paras = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    docs, cur, size = [], [], 0
    target = _target(rng)
    for p in paras:
        cur.append(p)
        size += len(p.encode()) + 2
        if size >= target:
            docs.append("\n\n".join(cur))
            cur, size, target = [], 0, _target(rng)
    if cur:
        tail = "\n\n".join(cur)
        if docs and size < MIN_DOC_BYTES:
            docs[-1] += "\n\n" + tail
        else:
            docs.append(tail)
    return [d for d in docs if len(d.encode()) >= MIN_DOC_BYTES]


def _target(rng: random.Random) -> int:
    lo, hi = DOC_BYTES
    return int(lo * (hi / lo) ** rng.random())  # log-uniform: many small documents, some large


def harvest(total_bytes: int, rng: random.Random) -> list[tuple[str, str]]:
    """[(category, text)] of about total_bytes, no two texts equal."""
    sources = source_files()
    quotas = {c: int(total_bytes * s) for c, s in SHARES.items()}
    seen: set[bytes] = set()
    docs: list[tuple[str, str]] = []
    filled: dict[str, int] = {}
    order = list(SHARES)
    order.remove(FALLBACK_CATEGORY)
    order.append(FALLBACK_CATEGORY)  # last: it takes what the others could not fill
    for cat in order:
        files = list(sources.get(cat, []))
        rng.shuffle(files)
        quota = quotas[cat]
        if cat == FALLBACK_CATEGORY:
            quota = total_bytes - sum(filled.values())
        got = 0
        for path, extract in files:
            if got >= quota:
                break
            if extract is None:
                text = docstrings(path)
            else:
                raw = read_text(path)
                text = extract(raw) if raw else None
            if not text:
                continue
            for d in split_docs(text, rng):
                h = hashlib.sha1(" ".join(d.split()).encode()).digest()
                if h in seen:
                    continue
                seen.add(h)
                docs.append((cat, d))
                got += len(d.encode())
                if got >= quota:
                    break
        filled[cat] = got
        print(f"  {cat:<20} {got / 2**20:7.2f} MB from {len(files)} files", file=sys.stderr)
    return docs


# --------------------------------------------------------------------------- planting


def shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = text.lower().split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int = NGRAM) -> float:
    sa, sb = shingles(a, n), shingles(b, n)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def perturb(text: str, k: int, edits: list[tuple[int, str | None]]) -> str:
    """Apply the first k edits (word position, replacement or None to delete)."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    chosen = dict(edits[:k])
    out, last = [], 0
    for i, (s, e) in enumerate(spans):
        if i not in chosen:
            continue
        rep = chosen[i]
        if rep is None:  # delete the word and the whitespace after it
            nxt = spans[i + 1][0] if i + 1 < len(spans) else e
            out.append(text[last:s])
            last = nxt
        else:
            out.append(text[last:s])
            out.append(rep)
            last = e
    out.append(text[last:])
    return "".join(out)


def make_near_copy(text: str, lo: float, hi: float, vocab: list[str], rng: random.Random):
    """A perturbed copy of text with lo <= J < hi (J <= hi when hi == 1), or None."""
    n_words = len(text.split())
    base = shingles(text)
    target = rng.uniform(lo + 0.01, min(hi, 0.985) - 0.01)
    positions = rng.sample(range(n_words), n_words)
    edits = [(p, None if rng.random() < 0.3 else rng.choice(vocab)) for p in positions]

    def j_of(k: int) -> tuple[float, str]:
        t = perturb(text, k, edits)
        s = shingles(t)
        return len(base & s) / len(base | s), t

    a, b = 1, n_words  # J decreases with k (not strictly): binary search for the target
    best = None
    while a <= b:
        mid = (a + b) // 2
        j, t = j_of(mid)
        if best is None or abs(j - target) < abs(best[0] - target):
            best = (j, t)
        if j > target:
            a = mid + 1
        else:
            b = mid - 1
    if best is None:
        return None
    j, t = best
    ok = lo <= j < hi or (hi == 1.0 and lo <= j < 1.0)
    return (j, t) if ok else None


_STOP = {"the", "be", "to", "of", "and", "that", "have", "with"}


def prose_like(text: str) -> bool:
    """A conservative Gopher-style check, so that planted pairs mostly survive the filters
    of both systems (a pair whose records are filtered out says nothing about dedup).
    Punctuation counts as words here, as it does for tokenizers that split it off."""
    tokens = re.findall(r"\w+|[^\w\s]", text)
    words = text.split()
    if not tokens or not words:
        return False
    alpha = sum(any(ch.isalpha() for ch in t) for t in tokens) / len(tokens)
    mean_len = sum(map(len, words)) / len(words)
    stops = sum(w.lower() in _STOP for w in words)
    lines = [l for l in text.splitlines() if l.strip()]
    bullets = sum(l.lstrip().startswith(("-", "*", "\u2022")) for l in lines) / max(1, len(lines))
    return alpha >= 0.78 and 3.5 <= mean_len <= 9 and stops >= 10 and bullets < 0.5 and text.count("#") < len(words) * 0.05


# --------------------------------------------------------------------------- writing


def write_corpus(out: Path, mb: float, seed: int, n_files: int, near_pairs: int, exact_groups: int) -> dict:
    import zstandard

    rng = random.Random(seed)
    t0 = time.time()
    total = int(mb * 2**20)
    planted_budget = 0.04  # planted copies are about this share of the bytes
    print(f"make_corpus: harvesting ~{mb} MB of real text", file=sys.stderr)
    docs = harvest(int(total * (1 - planted_budget)), rng)
    n_base = len(docs)

    # ---- choose bases among English prose of a reasonable size, distinct per pair/group
    candidates = [i for i, (c, t) in enumerate(docs) if c in PROSE_EN and 150 <= len(t.split()) <= 3000 and prose_like(t)]
    rng.shuffle(candidates)
    vocab_src = [w for i in candidates[:200] for w in docs[i][1].split() if w.isalpha() and 3 <= len(w) <= 12]
    vocab = sorted(set(vocab_src)) or ["lorem"]
    extra: list[dict] = []  # planted records: category, text, base index, kind, jaccard, bucket
    ci = 0
    per_bucket = {name: 0 for name in BUCKETS}
    for name, (lo, hi) in BUCKETS.items():
        tries = 0
        while per_bucket[name] < near_pairs and ci < len(candidates) and tries < near_pairs * 4:
            tries += 1
            base = candidates[ci]
            ci += 1
            made = make_near_copy(docs[base][1], lo, hi, vocab, rng)
            if made is None:
                continue
            j, text = made
            extra.append({"cat": docs[base][0], "text": text, "base": base, "kind": "near", "bucket": name, "jaccard": j})
            per_bucket[name] += 1
    groups = 0
    while groups < exact_groups and ci < len(candidates):
        base = candidates[ci]
        ci += 1
        for _ in range(rng.choice((1, 1, 2))):
            extra.append({"cat": docs[base][0], "text": docs[base][1], "base": base, "kind": "exact"})
        groups += 1

    # ---- place every record: originals in order of a shuffle, planted copies at random spots
    records = [{"cat": c, "text": t, "base": None, "kind": None, "orig": i} for i, (c, t) in enumerate(docs)]
    rng.shuffle(records)
    for e in extra:
        records.insert(rng.randrange(len(records) + 1), e)
    files: list[list[dict]] = [[] for _ in range(n_files)]
    # round-robin by size so that files are of similar size
    sizes = [0] * n_files
    where: dict[int, tuple[int, int]] = {}  # original doc index -> (file, record index)
    placed = []
    for r in records:
        f = min(range(n_files), key=lambda k: (sizes[k], k)) if rng.random() < 0.8 else rng.randrange(n_files)
        idx = len(files[f])
        files[f].append(r)
        sizes[f] += len(r["text"].encode())
        if r.get("orig") is not None:
            where[r["orig"]] = (f, idx)
        placed.append((r, f, idx))

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.jsonl.zst"):
        old.unlink()
    fname = lambda f: f"part-{f:03d}.jsonl.zst"  # noqa: E731
    doc_id = lambda f, i: f"bench-{f:03d}-{i:06d}"  # noqa: E731
    cctx = zstandard.ZstdCompressor(level=3)
    tsv = ["id\tfile\trecord_index\tcategory\tbytes"]
    raw_bytes = 0
    for f, recs in enumerate(files):
        buf = io.StringIO()
        for i, r in enumerate(recs):
            line = json.dumps(
                {"id": doc_id(f, i), "text": r["text"], "meta": {"pile_set_name": r["cat"]}}, ensure_ascii=False
            )
            buf.write(line + "\n")
            tsv.append(f"{doc_id(f, i)}\t{fname(f)}\t{i}\t{r['cat']}\t{len(r['text'].encode())}")
        data = buf.getvalue().encode()
        raw_bytes += len(data)
        (out / fname(f)).write_bytes(cctx.compress(data))
    (out / "docs.tsv").write_text("\n".join(tsv) + "\n")

    def loc(f: int, i: int) -> dict:
        return {"file": fname(f), "index": i, "id": doc_id(f, i)}

    pairs, exact = [], {}
    for r, f, i in placed:
        if r["kind"] is None:
            continue
        bf, bi = where[r["base"]]
        if r["kind"] == "near":
            # recompute from the records as written
            pairs.append(
                {"bucket": r["bucket"], "jaccard": round(jaccard(docs[r["base"]][1], r["text"]), 6),
                 "a": loc(bf, bi), "b": loc(f, i), "category": r["cat"]}
            )
        else:
            exact.setdefault(r["base"], [loc(bf, bi)]).append(loc(f, i))
    planted = {
        "seed": seed,
        "shingles": f"word {NGRAM}-grams of text.lower().split(), as a set",
        "buckets": {k: list(v) for k, v in BUCKETS.items()},
        "near_pairs": pairs,
        "exact_groups": list(exact.values()),
    }
    for p in pairs:  # the sidecar must say the truth
        lo, hi = BUCKETS[p["bucket"]]
        assert lo <= p["jaccard"] <= hi, p
    (out / "planted.json").write_text(json.dumps(planted, indent=1))
    write_config(out)

    cats: dict[str, dict] = {}
    for recs in files:
        for r in recs:
            c = cats.setdefault(r["cat"], {"docs": 0, "mb": 0.0})
            c["docs"] += 1
            c["mb"] += len(r["text"].encode()) / 2**20
    summary = {
        "seed": seed,
        "mb_requested": mb,
        "files": n_files,
        "docs": sum(len(r) for r in files),
        "original_docs": n_base,
        "text_mb": round(sum(c["mb"] for c in cats.values()), 2),
        "jsonl_mb": round(raw_bytes / 2**20, 2),
        "zst_mb": round(sum((out / fname(f)).stat().st_size for f in range(n_files)) / 2**20, 2),
        "near_pairs": {k: sum(p["bucket"] == k for p in pairs) for k in BUCKETS},
        "exact_groups": len(exact),
        "categories": {k: {"docs": v["docs"], "mb": round(v["mb"], 2)} for k, v in sorted(cats.items())},
        "seconds": round(time.time() - t0, 1),
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=1))
    return summary


CONFIG_TEMPLATE = """\
# strata build config for the curate benchmark corpus (written by tests/bench/make_corpus.py).
# The curate work mirrors tests/bench/datatrove_curate.py: Gopher quality + repetition
# filters and fastText language ID on prose (not on code), exact dedup, MinHash near dedup;
# C4's line rules and PII redaction, which that pipeline does not run, are off.
seed: 1234
sources:
  - name: bench
    format: pile
    paths: ["part-*.jsonl.zst"]
    category_field: pile
categories:
{categories}
filters:
  c4:
    enabled: false
  pii:
    enabled: false
  language:
    languages: [en, de, fr, it, pl]
  per_category:
    Github:
      gopher_quality: {{enabled: false}}
      gopher_repetition: {{enabled: false}}
      language: {{enabled: false}}
"""


def write_config(out: Path) -> Path:
    cats = "\n".join(f'  "{c}": {{epochs: {e}}}' for c, e in sorted(PILE_EPOCHS.items()))
    path = out / "strata.yaml"
    path.write_text(CONFIG_TEMPLATE.format(categories=cats))
    return path


def corpus_ready(out: Path) -> bool:
    return (out / "corpus.json").is_file() and (out / "planted.json").is_file()


def default_out(mb: float) -> Path:
    return DEFAULT_OUT_ROOT / f"corpus-{mb:g}mb"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60, help="corpus size in MB of text (default 60)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default out/bench/corpus-<MB>mb)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--files", type=int, default=16, help="number of jsonl.zst files (default 16)")
    ap.add_argument("--near-pairs", type=int, default=150, help="planted near-dup pairs per Jaccard bucket")
    ap.add_argument("--exact-groups", type=int, default=60, help="planted exact-duplicate groups")
    ap.add_argument("--no-apt", action="store_true", help="do not apt-get install the documentation packages")
    ap.add_argument("--quiet", action="store_true", help="no summary on stdout")
    args = ap.parse_args(argv)
    out = args.out or default_out(args.mb)
    if not args.no_apt:
        ensure_debian_docs()
    summary = write_corpus(out, args.mb, args.seed, args.files, args.near_pairs, args.exact_groups)
    if not args.quiet:
        print(json.dumps(summary, indent=1))
    print(f"corpus: {out}  ({summary['docs']} docs, {summary['jsonl_mb']} MB jsonl, {summary['seconds']} s)",
          file=sys.stderr if args.quiet else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
