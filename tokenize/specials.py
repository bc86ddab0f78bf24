"""The special tokens of the pretraining objectives, added to a sentencepiece model when the
build config asks (`tokenizer.objective_specials: true`):

    <cls>, <sep>               BERT's classification and separator tokens (NSP, SOP)
    [NLU], [NLG], [S2S]        UL2's mode tokens (R, X and S denoisers)
    <extra_id_0..N-1>          T5's sentinels (N = tokenizer.sentinels, 100 as T5)

They are appended to the vocabulary as *control* pieces, after every piece the model
already has: the ids of the others (pad/unk/bos/eos 0-3, <mask> 4, ...) do not move, and
sentencepiece never produces a control piece from text, so a document that contains the
string "<extra_id_0>" cannot inject a sentinel. Appending is a pure function of the model
bytes, so builds stay deterministic.
"""

from __future__ import annotations

import struct

import sentencepiece as spm

CLS, SEP = "<cls>", "<sep>"
MODE_TOKENS = {"mode_nlu": "[NLU]", "mode_nlg": "[NLG]", "mode_s2s": "[S2S]"}
SENTINEL = "<extra_id_{}>"
CONTROL = 3  # sentencepiece ModelProto.SentencePiece.Type.CONTROL


def objective_pieces(sentinels: int) -> list[str]:
    return [CLS, SEP, *MODE_TOKENS.values(), *(SENTINEL.format(k) for k in range(sentinels))]


def with_control_pieces(model_bytes: bytes, pieces: list[str]) -> bytes:
    """The model with `pieces` (those it lacks) appended as control pieces. Written on the
    protobuf wire directly: repeated field 1 of ModelProto, whose elements a parser
    appends in the order it reads them (sentencepiece's generated protobuf module needs a
    newer protobuf runtime than Beam allows)."""
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    have = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    extra = b"".join(_field(1, _piece(p)) for p in pieces if p not in have)
    return model_bytes + extra


def _piece(text: str) -> bytes:
    """SentencePiece {piece: text, score: 0.0, type: CONTROL}."""
    return _field(1, text.encode()) + b"\x15" + struct.pack("<f", 0.0) + b"\x18" + _varint(CONTROL)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def objective_special_ids(processor: spm.SentencePieceProcessor) -> dict:
    """The ids of the objective specials a model has: cls, sep, mode_nlu/nlg/s2s, and
    sentinels as [first id, count] (<extra_id_k> = first + k); absent ones are left out."""
    ids: dict = {}
    for name, piece in {"cls": CLS, "sep": SEP, **MODE_TOKENS}.items():
        if (i := _control_id(processor, piece)) is not None:
            ids[name] = i
    first = _control_id(processor, SENTINEL.format(0))
    if first is not None:
        count = 1
        while _control_id(processor, SENTINEL.format(count)) == first + count:
            count += 1
        ids["sentinels"] = [first, count]
    return ids


def _control_id(processor: spm.SentencePieceProcessor, piece: str) -> int | None:
    i = processor.piece_to_id(piece)
    return i if processor.id_to_piece(i) == piece and processor.is_control(i) else None
