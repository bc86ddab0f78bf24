"""A sentencepiece model the user names (`tokenizer.model`): loaded and checked before strata
copies it into a build, so that a wrong file (a text file, a device, another format) is a
config error naming the key, and nothing of it reaches OUT."""

from __future__ import annotations

import sentencepiece as spm

from strata.config import ConfigError
from strata.storage import filesystem

MAX_MODEL_BYTES = 1 << 30  # sentencepiece models are a few MB; 1 GiB bounds a wrong file's read


def read_model_file(uri: str, key: str = "tokenizer.model") -> bytes:
    """The bytes of the sentencepiece model at `uri`, once it has loaded and has an EOS piece
    (the shard stage ends every document with it); else a ConfigError naming `key`."""
    fs, path = filesystem(uri)
    try:
        if fs.info(path).get("type") != "file":
            raise ConfigError(f"{key}: {uri} is not a regular file")
        with fs.open(path, "rb") as f:
            data = f.read(MAX_MODEL_BYTES + 1)
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{key}: {uri} does not exist") from None
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {uri} ({err.strerror or err})") from None
    if len(data) > MAX_MODEL_BYTES:
        raise ConfigError(f"{key}: {uri} is larger than {MAX_MODEL_BYTES >> 20} MiB: not a sentencepiece model")
    try:
        processor = spm.SentencePieceProcessor(model_proto=data)
    except RuntimeError:
        processor = None
    if processor is None or processor.get_piece_size() == 0:
        raise ConfigError(f"{key}: {uri} is not a sentencepiece model (it does not load)")
    if processor.eos_id() < 0:
        raise ConfigError(f"{key}: {uri} has no EOS piece; strata ends every document with one")
    return data
