"""64-bit mixing shared by the filters, dedup keys, decontamination and the Bloom filter:
deterministic across processes and runs (unlike Python's salted hash()), vectorized."""

from __future__ import annotations

import numpy as np


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer (an avalanching bijection on uint64), in place."""
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    values ^= values >> np.uint64(31)
    return values
