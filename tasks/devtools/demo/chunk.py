"""One chunk of demo users: its own random stream, the day it is drawn for, and the ids it hands out.

Every part of the demo (people, contacts, account records, circulation, fees) draws from the chunk in
turn; the order of those draws is part of the determinism contract (tasks/devtools/demo/builder.py).
"""
from __future__ import annotations

import datetime as dt

import numpy as np

_DAY = 86_400


class Chunk:
    """`n` users numbered first + 1 .. first + n, drawn from `rng` as of `today`. `next_ids` (table name ->
    the next free id) is shared by the chunks of one build and advanced as ids are handed out."""

    def __init__(self, rng: np.random.Generator, first: int, n: int, today: dt.date, next_ids: dict[str, int]):
        self.rng, self.n, self.next_ids = rng, n, next_ids
        self.today = np.datetime64(today, "D")
        self.midnight = self.today.astype("datetime64[s]")
        self.number = np.arange(first + 1, first + n + 1)

    def ids(self, table: str, count: int) -> np.ndarray:
        start = self.next_ids[table]
        self.next_ids[table] = start + count
        return np.arange(start, start + count, dtype=np.int64)

    def days(self, low: int, high: int, size: int) -> np.ndarray:
        return self.rng.integers(low, high + 1, size=size)

    def date(self, offset_days: np.ndarray) -> np.ndarray:
        return self.today + offset_days.astype("timedelta64[D]")

    def time(self, offset_days: np.ndarray) -> np.ndarray:
        """A moment during opening hours (08:00-20:00) on the day `offset_days` from today."""
        seconds = offset_days * _DAY + self.rng.integers(8 * 3600, 20 * 3600, size=offset_days.size)
        return self.midnight + seconds.astype("timedelta64[s]")

    def pick(self, choices: np.ndarray, size: int, p=None) -> np.ndarray:
        return choices[self.rng.choice(len(choices), size=size, p=p)]
