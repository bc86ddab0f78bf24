"""A Bloom filter of 64-bit keys (Bloom 1970) in a numpy bit array.

The k bit positions of a key are splitmix64(key + i * gamma) mod m for i < k (the
splitmix64 sequence seeded with the key), each position an independent mix: double hashing
(h1 + i * h2 mod m) is cheaper but, for a small m sharing a factor with h2, collapses to a
few positions and lets false positives through far above the rate asked for.
Sized for n keys and a false positive rate p (Bloom's optimum):

    m = ceil(-n ln p / (ln 2)^2) bits,   k = max(1, round(m / n * ln 2)) hashes

so that the rate of false positives on keys never added is about (1 - e^(-k n / m))^k, which
is at most p for those m and k (`false_positive_rate` gives it for the keys actually added).
There are no false negatives: every key added is found.
"""

from __future__ import annotations

import math

import numpy as np

from strata.pipeline.hashing import splitmix64

_GAMMA = np.uint64(0x9E3779B97F4A7C15)


class BloomFilter:
    def __init__(self, bits: int, hashes: int, array: np.ndarray | None = None, added: int = 0):
        self.bits = bits
        self.hashes = hashes
        self.array = np.zeros((bits + 7) // 8, np.uint8) if array is None else array
        self.added = added

    @classmethod
    def for_capacity(cls, keys: int, fp_rate: float) -> "BloomFilter":
        """An empty filter for `keys` keys at false positive rate `fp_rate` (0 < fp_rate < 1)."""
        keys = max(keys, 1)
        bits = max(64, math.ceil(-keys * math.log(fp_rate) / math.log(2) ** 2))
        return cls(bits, max(1, round(bits / keys * math.log(2))))

    def _positions(self, keys: np.ndarray) -> np.ndarray:
        """(len(keys), hashes) bit positions."""
        seeds = np.asarray(keys, np.uint64).reshape(-1, 1) + _GAMMA * np.arange(self.hashes, dtype=np.uint64)
        return splitmix64(seeds) % np.uint64(self.bits)

    def add(self, keys: np.ndarray) -> None:
        positions = self._positions(keys).ravel()
        np.bitwise_or.at(self.array, positions >> np.uint64(3), np.left_shift(1, positions & np.uint64(7)).astype(np.uint8))
        self.added += len(keys)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Whether each key may have been added (always True for one that was)."""
        if not len(keys):
            return np.zeros(0, bool)
        positions = self._positions(keys)
        found = (self.array[positions >> np.uint64(3)] >> (positions & np.uint64(7)).astype(np.uint8)) & 1
        return found.all(axis=1)

    def false_positive_rate(self) -> float:
        """The expected rate of false positives for the keys added so far."""
        return (1 - math.exp(-self.hashes * self.added / self.bits)) ** self.hashes

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def to_dict(self) -> dict:
        """Plain data, for a Beam side input."""
        return {"bits": self.bits, "hashes": self.hashes, "array": self.array.tobytes(), "added": self.added}

    @classmethod
    def from_dict(cls, d: dict) -> "BloomFilter":
        return cls(d["bits"], d["hashes"], np.frombuffer(d["array"], np.uint8), d["added"])
