"""Streaming decompression whose memory does not grow with what a file expands to.

A decoder is asked for at most OUTPUT_CHUNK bytes at a time, however much one compressed
chunk would expand to (a zstd block of a few bytes can stand for 128 KiB of output, a 66 KB
file for 2 GiB). Each zstd frame or gzip member gets its own decoder, so a file cut inside
a frame is told apart from a clean end. A file whose output passes the expansion limit is
cut there with `decompression_limit`: the records before the cut are read as usual.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import IO, Callable, Iterator, Optional

try:  # Python 3.14+
    from compression import zstd
except ImportError:
    from backports import zstd

READ_CHUNK = 1 << 20
OUTPUT_CHUNK = 1 << 20
# The expansion ratio applies to at least this much input, so a small file may still
# expand to ratio x 1 MiB.
RATIO_FLOOR_BYTES = 1 << 20


class InputError(Exception):
    """A read-level failure of a file (not of one record)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ExpansionLimit:
    """How much a compressed file may expand to: at most `ratio` x the compressed bytes
    read so far (at least RATIO_FLOOR_BYTES of them), and at most `max_bytes` in all;
    None switches a bound off."""

    ratio: Optional[float] = None
    max_bytes: Optional[int] = None

    def allowed(self, compressed_bytes: int) -> float:
        bound = float("inf")
        if self.ratio is not None:
            bound = self.ratio * max(compressed_bytes, RATIO_FLOOR_BYTES)
        if self.max_bytes is not None:
            bound = min(bound, self.max_bytes)
        return bound


class _Decoder:
    """One zstd frame or gzip member, decoded at most OUTPUT_CHUNK bytes per step."""

    _decoder: object

    @property
    def eof(self) -> bool:
        return self._decoder.eof

    @property
    def unused_data(self) -> bytes:
        return self._decoder.unused_data


class _ZstdFrame(_Decoder):
    errors = zstd.ZstdError

    def __init__(self):
        self._decoder = zstd.ZstdDecompressor()

    def step(self, data: bytes) -> bytes:
        return self._decoder.decompress(data, max_length=OUTPUT_CHUNK)

    @property
    def needs_input(self) -> bool:
        return self._decoder.needs_input


class _GzipMember(_Decoder):
    errors = zlib.error

    def __init__(self):
        self._decoder = zlib.decompressobj(wbits=31)
        self._output_full = False

    def step(self, data: bytes) -> bytes:
        out = self._decoder.decompress(data or self._decoder.unconsumed_tail, OUTPUT_CHUNK)
        self._output_full = len(out) == OUTPUT_CHUNK
        return out

    @property
    def needs_input(self) -> bool:
        return not self._decoder.unconsumed_tail and not self._output_full


CODECS: dict[str, tuple[str, Callable]] = {".zst": ("zstd", _ZstdFrame), ".zstd": ("zstd", _ZstdFrame), ".gz": ("gzip", _GzipMember)}


def decompressed_chunks(uri: str, raw: IO[bytes], limit: ExpansionLimit) -> Iterator[bytes]:
    """The bytes of a file, decompressed by its extension, in chunks of at most 1 MiB."""
    for suffix, (codec, frame) in CODECS.items():
        if uri.endswith(suffix):
            return _frames(raw, frame, codec, limit)
    return _plain(raw)


def _plain(raw: IO[bytes]) -> Iterator[bytes]:
    while chunk := raw.read(READ_CHUNK):
        yield chunk


def _frames(raw: IO[bytes], new_frame: Callable, codec: str, limit: ExpansionLimit) -> Iterator[bytes]:
    frame, frame_open = new_frame(), False
    read = written = 0
    while data := raw.read(READ_CHUNK):
        read += len(data)
        while True:
            try:
                out = frame.step(data)
            except frame.errors as err:
                raise InputError("corrupt_compressed_file", f"{codec}: {err}") from None
            data, frame_open = b"", True
            if out:
                written += len(out)
                if written > limit.allowed(read):
                    raise InputError(
                        "decompression_limit", f"{codec}: over {written} bytes from {read} compressed bytes"
                    )
                yield out
            if frame.eof:
                data, frame, frame_open = frame.unused_data, new_frame(), False
                if not data:
                    break
            elif frame.needs_input:
                break
    if frame_open:
        raise InputError("truncated_compressed_file", f"{codec} stream ends inside a frame")
