"""numpy columns -> rows for executemany: the shapes every part of the demo builds its rows with."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def records(**columns: Any) -> list[dict]:
    """Columns (numpy arrays, lists or one value for every row) -> rows for executemany.
    numpy values become plain Python ones (int, str, date, datetime, None for NaT) so every driver takes them."""
    names = list(columns)
    values = []
    for value in columns.values():
        if isinstance(value, np.ndarray):
            values.append(value.tolist())
        elif isinstance(value, list):
            values.append(value)
        else:
            values.append(itertools.repeat(value))
    return [dict(zip(names, row)) for row in zip(*values)]


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-user row counts -> (owner position of every row, its ordinal within that user's rows)."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def where(mask: np.ndarray, values: Any) -> np.ndarray:
    """`values` where `mask` holds, NULL elsewhere."""
    return np.where(mask, values, None)
