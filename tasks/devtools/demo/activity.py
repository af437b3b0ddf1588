"""How much each demo user has going on: how many loans, requests and fees, and which are still active.

Tuned for the purge demo: most lapsed users have settled everything (purgeable); some still hold items,
have requests open or owe.
"""
from __future__ import annotations

import numpy as np

from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.people import People


class Activity:
    """Per-user counts (arrays indexed by position in the chunk) that loans, requests, fees and blocks follow."""

    def __init__(self, chunk: Chunk, who: People):
        rng, n = chunk.rng, chunk.n
        patron = ~who.contact
        active_loans = (rng.random(n) < np.where(who.past, 0.12, 0.35)) & patron
        self.n_active_loans = active_loans * (1 + rng.poisson(0.7, n))
        self.n_overdue = rng.binomial(self.n_active_loans, np.where(who.past, 0.7, 0.25))
        self.n_complete_loans = rng.poisson(2.5, n) * patron
        active_requests = (rng.random(n) < np.where(who.past, 0.05, 0.15)) & patron
        self.n_active_requests = active_requests * (1 + (rng.random(n) < 0.25))
        self.n_history_requests = rng.poisson(0.8, n) * patron
        has_fees = (rng.random(n) < 0.345) & patron
        self.owes = has_fees & (rng.random(n) < np.where(who.past, 0.4, 0.8))
        self.n_fees = has_fees * (1 + rng.poisson(0.5, n))
