"""Who the demo users are: names, groups and record types, birth dates, account types, the duplicates
to merge, who is protected, and when each account expires and may be purged."""
from __future__ import annotations

import numpy as np

from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.rows import records, where

FIRST_NAMES = (
    "José", "Øyvind", "Zoë", "Emma", "Liam", "Olivia", "Noah", "Amara", "Chen", "Wei", "Priya", "Arjun",
    "Fatima", "Omar", "Sofia", "Mateo", "Ingrid", "Björn", "Siobhán", "Seán", "Chloé", "François", "Łukasz",
    "Ana", "João", "Hannah", "David", "Sarah", "Michael", "Aisha", "Yuki", "Haruto", "Elena", "Dmitri",
    "Grace", "Samuel", "Nora", "Jonas", "Maja", "Lucas", "Kwame", "Ngozi", "Mia", "Ethan", "Renée", "Ágnes",
)
LAST_NAMES = (
    "Okafor", "Smith", "Johnson", "García", "Müller", "Ødegård", "Nguyễn", "Kowalski", "Núñez", "O'Brien",
    "Nakamura", "Andersen", "Hansen", "Larsen", "Rossi", "Dubois", "Schröder", "Popescu", "Kim", "Patel",
    "Singh", "Haddad", "Cohen", "Brown", "Williams", "Jones", "Taylor", "Lefèvre", "Śliwa", "Sørensen",
    "Johansson", "Fernández", "Silva", "Costa", "Murphy", "Walsh", "Ivanova", "Tanaka", "Mensah", "Berg",
)
_FIRST = np.array(FIRST_NAMES, dtype=object)
_LAST = np.array(LAST_NAMES, dtype=object)

# user group, record type, share of users, youngest and oldest age, share of INTERNAL accounts
# (walk-in and contact records are made in Alma; students and employees come from the SIS/HR feed).
_PROFILES = (
    ("UNDERGRAD", "PUBLIC", 0.50, 18, 25, 0.03),
    ("GRAD", "PUBLIC", 0.22, 22, 40, 0.03),
    ("FACULTY", "STAFF", 0.07, 30, 70, 0.05),
    ("STAFF", "STAFF", 0.06, 22, 66, 0.10),
    ("ALUMNI", "PUBLIC", 0.05, 24, 80, 0.10),
    ("PUBLIC", "PUBLIC", 0.06, 16, 85, 0.60),
    ("CHILD", "PUBLIC", 0.01, 6, 15, 0.60),
    ("PUBLIC", "CONTACT", 0.03, 0, 0, 1.00),
)
_GROUP = np.array([p[0] for p in _PROFILES], dtype=object)
_RECORD_TYPE = np.array([p[1] for p in _PROFILES], dtype=object)
_PROFILE_SHARE = np.array([p[2] for p in _PROFILES])
_MIN_AGE = np.array([p[3] for p in _PROFILES])
_MAX_AGE = np.array([p[4] for p in _PROFILES])
_INTERNAL_SHARE = np.array([p[5] for p in _PROFILES])

PURGE_PAST, PURGE_FUTURE, PURGE_NONE = 0, 1, 2
_PURGE_SHARES = (0.25, 0.35, 0.40)
PROTECTED_SHARE = 0.005
DUPLICATE_SHARE = 0.02


class People:
    """The users of one chunk. Arrays indexed by position in the chunk hold per-user facts."""

    def __init__(self, chunk: Chunk):
        self.user_id = chunk.ids("users", chunk.n)
        self.primary_id = np.array([f"demo{k:06d}" for k in chunk.number.tolist()], dtype=object)
        self._who(chunk)
        self._lifetime(chunk)

    def segment_type(self, owner: np.ndarray) -> np.ndarray:
        """Segments of an INTERNAL account are Internal, those fed from the SIS/HR External."""
        return np.where(self.internal[owner], "Internal", "External").astype(object)

    def _who(self, chunk: Chunk) -> None:
        rng, n = chunk.rng, chunk.n
        profile = rng.choice(len(_PROFILES), size=n, p=_PROFILE_SHARE)
        first = rng.integers(len(FIRST_NAMES), size=n)
        last = rng.integers(len(LAST_NAMES), size=n)
        middle = np.where(rng.random(n) < 0.2, rng.integers(len(FIRST_NAMES), size=n), -1)
        age_days = (_MIN_AGE[profile] * 365.25 + rng.random(n) * (_MAX_AGE[profile] - _MIN_AGE[profile] + 1) * 365.25)
        birth = chunk.date(-age_days.astype(np.int64))
        internal = rng.random(n) < _INTERNAL_SHARE[profile]

        # Duplicate-looking users copy an earlier user of the chunk: the same person registered twice,
        # typically once from the SIS feed and once at the desk (the other account type).
        contact = _RECORD_TYPE[profile] == "CONTACT"
        duplicate = (rng.random(n) < DUPLICATE_SHARE) & ~contact
        candidates = np.flatnonzero(~duplicate & ~contact)
        dup_pos = np.flatnonzero(duplicate)
        earlier = np.searchsorted(candidates, dup_pos)
        flip = rng.random(dup_pos.size) < 0.7
        pick = (rng.random(dup_pos.size) * earlier).astype(np.int64)
        keep = earlier > 0
        duplicate[dup_pos[~keep]] = False
        dup_pos, source, flip = dup_pos[keep], candidates[pick[keep]], flip[keep]
        for array in (profile, first, last, middle, birth):
            array[dup_pos] = array[source]
        internal[dup_pos] = np.where(flip, ~internal[source], internal[source])
        self.duplicate_of = np.full(n, -1)
        self.duplicate_of[dup_pos] = source

        self.profile, self.first, self.last, self.middle = profile, first, last, middle
        self.user_group, self.record_type = _GROUP[profile], _RECORD_TYPE[profile]
        self.contact = self.record_type == "CONTACT"
        self.staff = self.record_type == "STAFF"
        self.student = np.isin(self.user_group, ["UNDERGRAD", "GRAD"])
        self.duplicate = duplicate
        self.internal = internal
        self.birth = np.where(self.contact, np.datetime64("NaT"), birth)

    def _lifetime(self, chunk: Chunk) -> None:
        """Who is protected, when each account expires and may be purged, and who is still active."""
        rng, n = chunk.rng, chunk.n
        self.protected = (rng.random(n) < PROTECTED_SHARE) & ~self.duplicate
        purge = rng.choice(3, size=n, p=_PURGE_SHARES)
        # Half the protected users have lapsed, so the purge demo shows PROTECTED as a skip reason.
        purge[self.protected & (rng.random(n) < 0.5)] = PURGE_PAST
        self.past = purge == PURGE_PAST
        purge_offset = np.where(self.past, -chunk.days(1, 730, n), chunk.days(1, 1095, n))
        expiry_offset = np.where(purge == PURGE_NONE, chunk.days(-180, 1460, n), purge_offset - chunk.days(90, 365, n))
        self.purge_date = np.where(purge == PURGE_NONE, np.datetime64("NaT"), chunk.date(purge_offset))
        self.expiry_date = chunk.date(expiry_offset)
        # Loans, requests and fees of a lapsed user happened before the account expired.
        self.history_end = np.minimum(expiry_offset, 0)
        inactive = rng.random(n) < np.where(self.past, 0.3, 0.03)
        self.status = np.where(inactive, "INACTIVE", "ACTIVE").astype(object)


def users(who: People) -> list[dict]:
    return records(
        id=who.user_id,
        primary_id=who.primary_id,
        first_name=_FIRST[who.first],
        middle_name=where(who.middle >= 0, _FIRST[who.middle]),
        last_name=_LAST[who.last],
        user_group=who.user_group,
        record_type=who.record_type,
        account_type=np.where(who.internal, "INTERNAL", "EXTERNAL").astype(object),
        status=who.status,
        expiry_date=who.expiry_date,
        purge_date=who.purge_date,
        birth_date=who.birth,
        external_id=where(~who.internal, "SIS"),
        protected=who.protected,
    )
