"""Small generated corpora whose every number is known in advance."""

from __future__ import annotations

import hashlib
import random

WORDS = (
    "the of and to in is was that for on with as by at from this have not are but had they his her "
    "which an be one all were we when there can more has their if will would about out up into them "
    "some could time these two may then first any new very people after most also made many over such "
    "where through back years much before good well should because each those great under might while "
    "last never house world river mountain village garden morning evening winter summer letter friend "
    "history music science water forest island market window teacher student doctor station number "
    "silver golden quiet careful gentle simple ancient modern northern southern bright narrow "
    "walked carried opened watched followed remembered painted listened travelled wondered built "
    "slowly quickly often always together almost early later nearly softly"
).split()

FRENCH = (
    "Le matin, nous sommes allés au marché avec les enfants pour acheter des légumes frais et du pain. "
    "Ensuite, nous avons marché le long de la rivière jusqu'à la vieille église du village. "
    "La grand-mère nous a raconté une histoire de sa jeunesse pendant que le soleil se couchait doucement."
)
GERMAN = (
    "Am Morgen sind wir mit den Kindern auf den Markt gegangen, um frisches Gemüse und Brot zu kaufen. "
    "Danach sind wir am Fluss entlang bis zur alten Kirche des Dorfes gelaufen. "
    "Die Großmutter hat uns eine Geschichte aus ihrer Jugend erzählt, während die Sonne langsam unterging."
)


def prose(rng: random.Random, sentences: int = 12) -> str:
    out = []
    for _ in range(sentences):
        n = rng.randint(8, 16)
        words = [rng.choice(WORDS) for _ in range(n)]
        out.append(" ".join(words).capitalize() + ".")
    lines = [" ".join(out[i : i + 3]) for i in range(0, len(out), 3)]
    return "\n".join(lines)


def perturb(rng: random.Random, text: str, fraction: float) -> str:
    """Replace about `fraction` of the words (a near-duplicate)."""
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
        words[i] = rng.choice([w for w in WORDS if w != words[i]])
    return " ".join(words)


def word_ngram_jaccard(a: str, b: str, n: int = 5) -> float:
    def shingles(t):
        w = t.lower().split()
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def doc_id(source: str, relpath: str, record_index: int) -> str:
    """The DESIGN contract: a hash of (source name, path relative to the source root, record index)."""
    return hashlib.blake2b(f"{source}\x1f{relpath}\x1f{record_index}".encode(), digest_size=16).hexdigest()


def kept_documents(planted: dict) -> list[dict]:
    """The planted English documents (conftest's `planted`) with their doc_id, less the copy
    with the larger doc_id of each planted duplicate pair (the smallest doc_id survives)."""
    ids = {(d["relpath"], d["record_index"]): doc_id(d["source"], d["relpath"], d["record_index"])
           for d in planted["documents"]}
    removed = {max(ids[original], ids[copy]) for _, original, copy in planted["copies"]}
    return [{**d, "doc_id": ids[d["relpath"], d["record_index"]]} for d in planted["documents"]
            if ids[d["relpath"], d["record_index"]] not in removed]
