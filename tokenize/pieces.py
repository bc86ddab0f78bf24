"""What each piece of a sentencepiece vocabulary stands for in text: its UTF-8 bytes and
where words start in it. Bits per byte and perplexity per word are computed from these
tables, so they do not depend on the tokenizer.

    bytes     UTF-8 length of the text the piece decodes to: `▁` is one space (1 byte), a
              byte-fallback piece `<0xNN>` is 1 byte, control pieces (pad, bos, eos,
              sentinels, mode tokens...) and unk are 0
    words     a word is a run of non-whitespace characters; `inner[i]` counts the words
              that start inside piece i after its first character, `opens[i]` says its
              first character is not whitespace and `closes[i]` that its last is (or that
              it is empty), so a word starts at piece i's first character when the
              piece before closes and piece i opens
    sentence_end  the piece's text ends a sentence: ".", "!" or "?" at its end (before any
              whitespace), fairseq BART's full-stop rule
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sentencepiece as spm

SPACE = "\u2581"  # sentencepiece's visible space


@dataclass(frozen=True)
class PieceTable:
    bytes: np.ndarray  # int64 [vocab]
    opens: np.ndarray  # bool [vocab]
    closes: np.ndarray  # bool [vocab]
    inner: np.ndarray  # int64 [vocab]
    sentence_end: np.ndarray  # bool [vocab]

    @classmethod
    def of(cls, processor: spm.SentencePieceProcessor) -> "PieceTable":
        return cls.of_texts([piece_text(processor, i) for i in range(processor.get_piece_size())])

    @classmethod
    def of_texts(cls, texts: list[str]) -> "PieceTable":
        """From the text each id stands for (tokenize/encoders.py piece_texts)."""
        return cls(
            bytes=np.array([len(t.encode()) for t in texts], dtype=np.int64),
            opens=np.array([bool(t) and not t[0].isspace() for t in texts]),
            closes=np.array([not t or t[-1].isspace() for t in texts]),
            inner=np.array([sum(a.isspace() and not b.isspace() for a, b in zip(t, t[1:])) for t in texts], dtype=np.int64),
            sentence_end=np.array([t.rstrip().endswith((".", "!", "?")) for t in texts]),
        )

    def words(self, previous: np.ndarray, tokens: np.ndarray) -> int:
        """Words that start in `tokens`, each preceded by the token at the same index of
        `previous` (for CLM targets: the inputs)."""
        return int(self.inner[tokens].sum() + (self.closes[previous] & self.opens[tokens]).sum())


def piece_text(processor: spm.SentencePieceProcessor, i: int) -> str:
    """The text piece i stands for ("" for control and unk; one placeholder character per
    byte-fallback byte, which is never whitespace)."""
    if processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i):
        return ""
    if processor.is_byte(i):
        return "\x00"  # one byte; part of a character that is not a space
    return processor.id_to_piece(i).replace(SPACE, " ")
