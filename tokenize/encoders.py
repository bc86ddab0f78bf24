"""One interface over the tokenizers strata reads: a sentencepiece model (`*.model`) or a
Hugging Face tokenizer (`tokenizer.json`, or a folder holding one and, optionally, its
`tokenizer_config.json`, which names the special tokens).

    encode(texts)  ids of each text, nothing added (the shard stage appends EOS)
    decode(ids)    text
    vocab_size     every id the tokenizer can give, added tokens included
    model_type     sentencepiece's "bpe", "unigram", ...; "hf-bpe", "hf-wordpiece", ... for HF
    special_ids    {pad, unk, bos, eos, mask} -> id or None
    piece_texts()  the text each id stands for, for bits per byte and words
                   (tokenize/pieces.py): "" for control tokens, one "\x00" per byte of a
                   byte-fallback piece or of a byte-level BPE piece's non-ASCII bytes
"""

from __future__ import annotations

import functools
import json
import re

from strata.manifests.manifest import TokenizerEntry
from strata.manifests.paths import resolve_inside
from strata.storage import filesystem, join
from strata.tokenize.pieces import piece_text
from strata.tokenize.spm_proto import model_type

# Special tokens of a HF tokenizer without a tokenizer_config.json, by their usual names.
USUAL_SPECIALS = {
    "eos": ("</s>", "<|endoftext|>", "<eos>", "[SEP]"),
    "bos": ("<s>", "<|startoftext|>", "<bos>", "[CLS]"),
    "pad": ("<pad>", "[PAD]", "<|padding|>"),
    "unk": ("<unk>", "[UNK]"),
    "mask": ("<mask>", "[MASK]"),
}


def _read(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return f.read()


def is_sentencepiece(path: str) -> bool:
    return path.endswith(".model")


class SentencePieceEncoder:
    def __init__(self, model_bytes: bytes):
        import sentencepiece as spm

        from strata.tokenize.trainer import _special_ids

        self.sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        self.vocab_size = self.sp.get_piece_size()
        self.special_ids = _special_ids(self.sp)
        # The processor does not say; sentencepiece's own sentencepiece_model_pb2 needs a
        # newer protobuf runtime than Beam allows, so the model's trainer spec is read here.
        self.model_type = model_type(model_bytes)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=1)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def piece_texts(self) -> list[str]:
        return [piece_text(self.sp, i) for i in range(self.vocab_size)]


class HFTokenizerEncoder:
    def __init__(self, tokenizer_json: bytes, config: dict | None = None):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        self.special_ids = self._specials(config or {})
        self.model_type = "hf-" + str(json.loads(tokenizer_json).get("model", {}).get("type", "unknown")).lower()

    def _specials(self, config: dict) -> dict[str, int | None]:
        specials = {}
        for name, usual in USUAL_SPECIALS.items():
            named = config.get(f"{name}_token")
            if isinstance(named, dict):
                named = named.get("content")
            candidates = [named] if named else list(usual)
            ids = [self.tokenizer.token_to_id(t) for t in candidates if t is not None]
            specials[name] = next((i for i in ids if i is not None), None)
        return specials

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def piece_texts(self) -> list[str]:
        """Byte-level BPE pieces hold one character per byte (GPT-2's byte-to-character
        table); others are text with "▁" for spaces and <0xNN> byte pieces."""
        byte_level = '"ByteLevel"' in self.tokenizer.to_str()
        special = {t.content for t in self.tokenizer.get_added_tokens_decoder().values() if t.special}
        texts = [""] * self.vocab_size
        for piece, i in self.tokenizer.get_vocab(with_added_tokens=True).items():
            if piece not in special:
                texts[i] = _byte_level_text(piece) if byte_level else _piece_text(piece)
        return texts


BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _piece_text(piece: str) -> str:
    return "\x00" if BYTE_PIECE.fullmatch(piece) else piece.replace("\u2581", " ")


@functools.cache
def _byte_of_char() -> dict[str, int]:
    """GPT-2's printable character for every byte, inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def _byte_level_text(piece: str) -> str:
    table = _byte_of_char()
    return "".join(chr(table[c]) if table.get(c, 128) < 128 else "\x00" for c in piece)


def hf_tokenizer_files(path: str) -> tuple[str, str | None]:
    """(tokenizer.json, tokenizer_config.json or None) of a HF tokenizer file or folder."""
    if path.endswith(".json"):
        folder, json_file = path.rsplit("/", 1)[0] if "/" in path else ".", path
    else:
        folder, json_file = path, join(path, "tokenizer.json")
    fs, config_path = filesystem(join(folder, "tokenizer_config.json"))
    if not fs.exists(filesystem(json_file)[1]):
        raise FileNotFoundError(f"{path}: no tokenizer.json (give a sentencepiece .model, a tokenizer.json or its folder)")
    return json_file, join(folder, "tokenizer_config.json") if fs.exists(config_path) else None


def load_encoder(path: str, config_path: str | None = None) -> SentencePieceEncoder | HFTokenizerEncoder:
    """The tokenizer at `path`: a sentencepiece .model, a HF tokenizer.json or its folder.
    For a bare tokenizer.json, `config_path` may name its tokenizer_config.json."""
    if is_sentencepiece(path):
        return SentencePieceEncoder(_read(path))
    json_file, found_config = hf_tokenizer_files(path)
    config_path = config_path or found_config
    return HFTokenizerEncoder(_read(json_file), json.loads(_read(config_path)) if config_path else None)


def build_tokenizer_path(build: str, tokenizer: TokenizerEntry) -> str:
    """The URI of a build's tokenizer (the manifest's tokenizer path, kept inside the build)."""
    return resolve_inside(build, tokenizer.path, "manifest tokenizer path")


def load_build_encoder(build: str, tokenizer: TokenizerEntry) -> SentencePieceEncoder | HFTokenizerEncoder:
    return load_encoder(build_tokenizer_path(build, tokenizer))
