"""Formatting shared by audit, verify and trace: numbers, plain-text tables for the
terminal, and thinning of long series for display."""

from __future__ import annotations

import numpy as np


def count(n: int | float) -> str:
    return f"{n:,}"


def percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _binary(n: float, units: tuple[str, ...], separator: str) -> str:
    for unit in units[:-1]:
        if n < 1024:
            return f"{n:.3g}{separator}{unit}"
        n /= 1024
    return f"{n:.3g}{separator}{units[-1]}"


def quantity(n: float) -> str:
    """A count in binary thousands, for power-of-two bins: 512, 1K, 64K, 2M."""
    return _binary(n, ("", "K", "M", "G", "T"), "")


def size(n: float) -> str:
    """Bytes in binary units: 512 B, 1.5 KiB, 64 MiB."""
    return _binary(n, ("B", "KiB", "MiB", "GiB", "TiB"), " ")


def format_table(headers: list[str], rows: list[list], left: int = 1) -> str:
    """Columns padded to their widest cell: the first `left` left-aligned, the others right."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(row) for row in cells[1:])])


def evenly(points: list, most: int) -> list:
    """At most `most` of the points, evenly spread, the first and last included."""
    if len(points) <= most:
        return points
    return [points[i] for i in np.unique(np.linspace(0, len(points) - 1, most).round().astype(int))]
