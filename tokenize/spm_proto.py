"""Read a sentencepiece model file (a ModelProto) from the protobuf wire format directly:
sentencepiece's generated module needs a newer protobuf runtime than Beam allows.

    ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
    SentencePiece   1 piece, 2 score (float), 3 type
    TrainerSpec     3 model_type, 35 byte_fallback
    NormalizerSpec  1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
PIECE_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}


def proto_fields(data: bytes) -> Iterator[tuple[int, object]]:
    """(field number, value) of a protobuf message in order: ints for varints, bytes for
    length-delimited fields, floats for fixed32, None for fixed64."""

    def varint(pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            byte = data[pos]
            result |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if byte < 0x80:
                return result, pos

    pos = 0
    while pos < len(data):
        key, pos = varint(pos)
        wire = key & 7
        if wire == 0:
            value, pos = varint(pos)
        elif wire == 2:
            size, pos = varint(pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = struct.unpack("<f", data[pos : pos + 4])[0], pos + 4
        elif wire == 1:
            value, pos = None, pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, value


def _last(data: bytes | None, number: int, default=None):
    found = default
    for n, value in proto_fields(data or b""):
        if n == number:
            found = value
    return found


@dataclass
class Piece:
    piece: str
    score: float
    type: str


@dataclass
class SentencePieceModel:
    pieces: list[Piece]  # in id order
    model_type: str
    byte_fallback: bool
    normalizer: str
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool


def model_type(model_bytes: bytes) -> str:
    """ModelProto.trainer_spec.model_type (unigram when unset, as sentencepiece's default)."""
    return MODEL_TYPES.get(_last(_last(model_bytes, 2), 3, 1), "unknown")


def read_model(model_bytes: bytes) -> SentencePieceModel:
    pieces = []
    for number, value in proto_fields(model_bytes):
        if number == 1:
            fields = dict(proto_fields(value))
            pieces.append(Piece(fields.get(1, b"").decode(), fields.get(2, 0.0), PIECE_TYPES.get(fields.get(3, 1), "normal")))
    trainer, normalizer = _last(model_bytes, 2), _last(model_bytes, 3)
    return SentencePieceModel(
        pieces=pieces,
        model_type=model_type(model_bytes),
        byte_fallback=bool(_last(trainer, 35, 0)),
        normalizer=(_last(normalizer, 1) or b"nmt_nfkc").decode(),
        add_dummy_prefix=bool(_last(normalizer, 3, 1)),
        remove_extra_whitespaces=bool(_last(normalizer, 4, 1)),
        escape_whitespaces=bool(_last(normalizer, 5, 1)),
    )
