"""`demo-data`: a realistic, deterministic demo library to try the jobs on (and to benchmark them).

The same users, seed and today give identical rows. Users are made in fixed-size chunks, each from its
own random stream (so a chunk never depends on how the previous one was drawn), with vectorised numpy;
each chunk goes in with one executemany per table, and everything in one transaction, so a failed run
leaves the library empty and a million users keep memory flat.

The shape is tuned for the jobs' demos: about a quarter of the users have a purge date in the past, and
of those most can be purged while some must be skipped (active loans, active requests, fees owed,
protected); about one user in three has fees, a few are partly paid; about 2% look like duplicates of
another user (same names and birth date, different primary id, often the other account type) to merge.
"""
from __future__ import annotations

import datetime as dt
import itertools
import unicodedata
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from tasks.db import schema
from tasks.library.codes import ensure_codes
from tasks.db.engine import write_transaction
from tasks.errors import InvalidInput
from tasks.db.sql import sql_for

# Part of the determinism contract: the same seed with another chunk size would draw other users.
CHUNK_USERS = 20_000

# Parents before children, so foreign keys hold at every insert.
_TABLES = (
    schema.users, schema.user_identifiers, schema.user_addresses, schema.user_emails, schema.user_phones,
    schema.user_notes, schema.user_attachments, schema.user_roles, schema.user_blocks,
    schema.user_statistics, schema.user_proxies, schema.loans, schema.requests, schema.fees,
    schema.fee_transactions,
)

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
_SPECIAL_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L",
                                  "đ": "d", "'": "", " ": ""})


def _ascii(name: str) -> str:
    """José -> jose, Øyvind -> oyvind: e-mail addresses stay plain ASCII."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_SPECIAL_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode().lower()


_FIRST = np.array(FIRST_NAMES, dtype=object)
_LAST = np.array(LAST_NAMES, dtype=object)
_FIRST_ASCII = [_ascii(n) for n in FIRST_NAMES]
_LAST_ASCII = [_ascii(n) for n in LAST_NAMES]

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

LIBRARIES = {"MAIN": "Main library", "SCI": "Science library", "LAW": "Law library", "MUSIC": "Music library"}
_LIBRARY = np.array(list(LIBRARIES), dtype=object)
_LIBRARY_SHARE = (0.55, 0.20, 0.15, 0.10)

TITLES = (
    "Bananboken", "Knowledge concepts", "Introduction to Algorithms", "The Structure of Scientific Revolutions",
    "Pride and Prejudice", "Sult", "Cien años de soledad", "Le Petit Prince", "Die Verwandlung",
    "Principles of Neural Science", "Gray's Anatomy", "Constitutional Law: Cases and Materials",
    "The Well-Tempered Clavier (score)", "Organic Chemistry", "Thinking, Fast and Slow", "A Brief History of Time",
    "Kristin Lavransdatter", "Brød og vin", "Ædle metaller i Norden", "Økonomisk historie", "Crime and Punishment",
    "Things Fall Apart", "Beloved", "The Hobbit", "Calculus: Early Transcendentals", "Statistical Rethinking",
    "Designing Data-Intensive Applications", "The Art of Computer Programming, Vol. 1", "Moby-Dick",
    "Il nome della rosa", "Norwegian Wood", "Americanah", "The Second Sex", "Das Kapital", "Zur Farbenlehre",
    "Medieval Manuscripts of Bergen", "Climate Change 2021: The Physical Science Basis", "Pedagogy of the Oppressed",
)
_TITLE = np.array(TITLES, dtype=object)

# city, state/province, postal code format and range, country
_CITIES = (
    ("Springfield", "IL", "627{:02d}", 100, "USA"), ("Madison", "WI", "537{:02d}", 100, "USA"),
    ("Boston", "MA", "021{:02d}", 100, "USA"), ("Montréal", "QC", "H2X {:01d}Y{:01d}", 10, "CAN"),
    ("Oslo", None, "0{:03d}", 1000, "NOR"), ("Tromsø", None, "9{:03d}", 1000, "NOR"),
    ("København", None, "1{:03d}", 1000, "DNK"), ("Zürich", None, "80{:02d}", 100, "CHE"),
    ("München", None, "80{:03d}", 1000, "DEU"), ("Kraków", None, "30-{:03d}", 1000, "POL"),
    ("São Paulo", "SP", "01{:03d}-000", 1000, "BRA"), ("Manchester", None, "M1 {:01d}AE", 10, "GBR"),
)
COUNTRIES = {"USA": "United States", "CAN": "Canada", "NOR": "Norway", "DNK": "Denmark", "CHE": "Switzerland",
             "DEU": "Germany", "POL": "Poland", "BRA": "Brazil", "GBR": "United Kingdom"}
_STREETS = ("Library Lane", "Main Street", "Storgata", "Bahnhofstraße", "Rue Sainte-Catherine", "Elm Street",
            "Kirkeveien", "Nørregade", "ul. Floriańska", "Rua Augusta", "Oxford Road", "College Avenue")

_NOTES = (
    ("CIRCULATION", "Prefers email notices"), ("CIRCULATION", "Returned an item damaged; advised on care"),
    ("CIRCULATION", "Lost card replaced"), ("GENERAL", "Visiting researcher"),
    ("GENERAL", "Address verified by phone"), ("REGISTRAR", "Enrolment confirmed by the registrar"),
    ("REGISTRAR", "On leave of absence"), ("POPUP", "Check ID before checkout"),
    ("POPUP", "Has an outstanding interlibrary loan"),
)
_NOTE_TYPE = np.array([t for t, _ in _NOTES], dtype=object)
_NOTE_TEXT = np.array([x for _, x in _NOTES], dtype=object)
_NOTE_AUTHOR = np.array(["circ.desk", "registrar", "system"], dtype=object)

# block type, block description, note
_BLOCKS = (("GENERAL", "GLOBAL", "Blocked by the library"), ("GENERAL", "LOST_CARD", "Card reported lost"),
           ("LOAN", "OVERDUE", "Overdue items"))

STATISTIC_CATEGORIES = {"SCI": "Sciences", "HUM": "Humanities", "SOC": "Social sciences", "MED": "Medicine",
                        "ENG": "Engineering", "LAW": "Law", "ONCAMPUS": "Lives on campus",
                        "OFFCAMPUS": "Lives off campus"}
CATEGORY_TYPES = {"FACULTY": "Faculty", "RESIDENCE": "Residence"}
_SUBJECTS = np.array(["SCI", "HUM", "SOC", "MED", "ENG", "LAW"], dtype=object)
_RESIDENCES = np.array(["ONCAMPUS", "OFFCAMPUS"], dtype=object)

PATRON_ROLE = "200"
CIRCULATION_DESK_OPERATOR = "21"
ROLE_TYPES = {PATRON_ROLE: "Patron", CIRCULATION_DESK_OPERATOR: "Circulation Desk Operator"}

# fee type, share of fees, and how its amount is drawn (in cents)
_FEE_TYPES = np.array(["OVERDUEFINE", "LOSTITEMREPLACEMENTFEE", "LOSTITEMPROCESSFEE", "DAMAGEDITEMFINE",
                       "CARDRENEWAL"], dtype=object)
_FEE_TYPE_SHARE = (0.55, 0.10, 0.10, 0.10, 0.15)
FEE_FULL, FEE_PARTLY_PAID, FEE_IN_DISPUTE, FEE_PAID = 0, 1, 2, 3
_PAYMENT_COMMENTS = np.array(["Paid at the circulation desk", "Paid online", "Paid at the self-service kiosk"],
                             dtype=object)
_ACTIVE_REQUEST_STATUS = np.array(["NOT_STARTED", "IN_PROCESS", "ON_HOLD_SHELF"], dtype=object)
_REQUEST_TYPES = np.array(["HOLD", "DIGITIZATION", "BOOKING"], dtype=object)

_DAY = 86_400


def make_demo_library(engine: Engine, users: int, seed: int, today: dt.date | None = None) -> dict[str, int]:
    """Fill an empty library with `users` demo users and everything attached to them.

    Returns the number of rows added per table. Raises InvalidInput when `users` is not a whole number of
    at least 1 or the database already holds users (the demo never mixes with real records)."""
    if isinstance(users, bool) or not isinstance(users, (int, np.integer)) or users < 1:
        raise InvalidInput(f"the number of demo users must be a whole number of at least 1, got {users!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidInput(f"the seed must be a whole number, got {seed!r}")
    if isinstance(today, dt.datetime):
        today = today.date()
    today = today or dt.date.today()
    counts = {table.name: 0 for table in _TABLES}
    with write_transaction(engine) as conn:
        if conn.execute(select(schema.users.c.id).limit(1)).first() is not None:
            raise InvalidInput(
                "the database already contains users; demo-data only fills an empty library "
                "(point DATABASE_URL at a new database)"
            )
        _ensure_demo_codes(conn)
        next_ids = {t.name: (conn.execute(select(func.max(t.c.id))).scalar() or 0) + 1 for t in _TABLES}
        for chunk_no, first in enumerate(range(0, int(users), CHUNK_USERS)):
            rng = np.random.default_rng(np.random.SeedSequence(int(seed) % 2**64, spawn_key=(chunk_no,)))
            rows = _Chunk(rng, first, min(CHUNK_USERS, int(users) - first), today, next_ids).rows()
            for table in _TABLES:
                batch = rows[table.name]
                if batch:
                    conn.execute(table.insert(), batch)
                    counts[table.name] += len(batch)
            del rows
        conn.execute(sql_for(conn, "demo/reset_sequences"))
    return counts


def _ensure_demo_codes(conn) -> None:
    """The demo uses a few codes a new library does not start with; the code tables must know them."""
    ensure_codes(conn, "library", LIBRARIES)
    ensure_codes(conn, "country", COUNTRIES)
    ensure_codes(conn, "statistic-category", STATISTIC_CATEGORIES)
    ensure_codes(conn, "category-type", CATEGORY_TYPES)
    ensure_codes(conn, "role-type", ROLE_TYPES)


def _records(**columns: Any) -> list[dict]:
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


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-user row counts -> (owner position of every row, its ordinal within that user's rows)."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def _where(mask: np.ndarray, values: Any) -> np.ndarray:
    """`values` where `mask` holds, NULL elsewhere."""
    return np.where(mask, values, None)


class _Chunk:
    """One chunk of users and all their rows. Arrays indexed by position hold per-user facts."""

    def __init__(self, rng: np.random.Generator, first: int, n: int, today: dt.date, next_ids: dict[str, int]):
        self.rng, self.n, self.next_ids = rng, n, next_ids
        self.today = np.datetime64(today, "D")
        self.midnight = self.today.astype("datetime64[s]")
        self.number = np.arange(first + 1, first + n + 1)
        self.user_id = self._ids("users", n)
        self.primary_id = np.array([f"demo{k:06d}" for k in self.number.tolist()], dtype=object)
        self._people()
        self._fulfillment_plan()

    # ------------------------------------------------------------ helpers

    def _ids(self, table: str, count: int) -> np.ndarray:
        start = self.next_ids[table]
        self.next_ids[table] = start + count
        return np.arange(start, start + count, dtype=np.int64)

    def _days(self, low: int, high: int, size: int) -> np.ndarray:
        return self.rng.integers(low, high + 1, size=size)

    def _date(self, offset_days: np.ndarray) -> np.ndarray:
        return self.today + offset_days.astype("timedelta64[D]")

    def _time(self, offset_days: np.ndarray) -> np.ndarray:
        """A moment during opening hours (08:00-20:00) on the day `offset_days` from today."""
        seconds = offset_days * _DAY + self.rng.integers(8 * 3600, 20 * 3600, size=offset_days.size)
        return self.midnight + seconds.astype("timedelta64[s]")

    def _pick(self, choices: np.ndarray, size: int, p=None) -> np.ndarray:
        return choices[self.rng.choice(len(choices), size=size, p=p)]

    def _segment_type(self, owner: np.ndarray) -> np.ndarray:
        return np.where(self.internal[owner], "Internal", "External").astype(object)

    # ------------------------------------------------------------ who the users are

    def _people(self) -> None:
        rng, n = self.rng, self.n
        profile = rng.choice(len(_PROFILES), size=n, p=_PROFILE_SHARE)
        first = rng.integers(len(FIRST_NAMES), size=n)
        last = rng.integers(len(LAST_NAMES), size=n)
        middle = np.where(rng.random(n) < 0.2, rng.integers(len(FIRST_NAMES), size=n), -1)
        age_days = (_MIN_AGE[profile] * 365.25 + rng.random(n) * (_MAX_AGE[profile] - _MIN_AGE[profile] + 1) * 365.25)
        birth = self._date(-age_days.astype(np.int64))
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

        self.protected = (rng.random(n) < PROTECTED_SHARE) & ~duplicate
        purge = rng.choice(3, size=n, p=_PURGE_SHARES)
        # Half the protected users have lapsed, so the purge demo shows PROTECTED as a skip reason.
        purge[self.protected & (rng.random(n) < 0.5)] = PURGE_PAST
        self.past = purge == PURGE_PAST
        purge_offset = np.where(self.past, -self._days(1, 730, n), self._days(1, 1095, n))
        expiry_offset = np.where(purge == PURGE_NONE, self._days(-180, 1460, n), purge_offset - self._days(90, 365, n))
        self.purge_date = np.where(purge == PURGE_NONE, np.datetime64("NaT"), self._date(purge_offset))
        self.expiry_date = self._date(expiry_offset)
        # Loans, requests and fees of a lapsed user happened before the account expired.
        self.history_end = np.minimum(expiry_offset, 0)
        inactive = rng.random(n) < np.where(self.past, 0.3, 0.03)
        self.status = np.where(inactive, "INACTIVE", "ACTIVE").astype(object)

    def _fulfillment_plan(self) -> None:
        """How many loans, requests and fees each user has, and which are still active."""
        rng, n = self.rng, self.n
        patron = ~self.contact
        # Most lapsed users have settled everything (purgeable); some still hold items, requests or owe.
        active_loans = (rng.random(n) < np.where(self.past, 0.12, 0.35)) & patron
        self.n_active_loans = active_loans * (1 + rng.poisson(0.7, n))
        self.n_overdue = rng.binomial(self.n_active_loans, np.where(self.past, 0.7, 0.25))
        self.n_complete_loans = rng.poisson(2.5, n) * patron
        active_requests = (rng.random(n) < np.where(self.past, 0.05, 0.15)) & patron
        self.n_active_requests = active_requests * (1 + (rng.random(n) < 0.25))
        self.n_history_requests = rng.poisson(0.8, n) * patron
        has_fees = (rng.random(n) < 0.345) & patron
        self.owes = has_fees & (rng.random(n) < np.where(self.past, 0.4, 0.8))
        self.n_fees = has_fees * (1 + rng.poisson(0.5, n))

    # ------------------------------------------------------------ rows

    def rows(self) -> dict[str, list[dict]]:
        return {
            "users": self._users(),
            "user_identifiers": self._identifiers(),
            "user_addresses": self._addresses(),
            "user_emails": self._emails(),
            "user_phones": self._phones(),
            "user_notes": self._notes(),
            "user_attachments": self._attachments(),
            "user_roles": self._roles(),
            "user_blocks": self._blocks(),
            "user_statistics": self._statistics(),
            "user_proxies": self._proxies(),
            "loans": self._loans(),
            "requests": self._requests(),
            **self._fees(),
        }

    def _users(self) -> list[dict]:
        return _records(
            id=self.user_id,
            primary_id=self.primary_id,
            first_name=_FIRST[self.first],
            middle_name=_where(self.middle >= 0, _FIRST[self.middle]),
            last_name=_LAST[self.last],
            user_group=self.user_group,
            record_type=self.record_type,
            account_type=np.where(self.internal, "INTERNAL", "EXTERNAL").astype(object),
            status=self.status,
            expiry_date=self.expiry_date,
            purge_date=self.purge_date,
            birth_date=self.birth,
            external_id=_where(~self.internal, "SIS"),
            protected=self.protected,
        )

    def _identifiers(self) -> list[dict]:
        # Multiplying by a number coprime to 10 permutes the values modulo 10^k: unique, but not sequential.
        numbers = self.number.tolist()
        barcode = np.array([f"3{(k * 15485863 + 271828) % 10**13:013d}" for k in numbers], dtype=object)
        univ_id = np.array([f"{(k * 7919 + 104729) % 10**9:09d}" for k in numbers], dtype=object)
        has_univ_id = (np.isin(self.user_group, ["UNDERGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI"])
                       & ~self.duplicate & (self.rng.random(self.n) < 0.9))
        owner, ordinal = _expand(1 + has_univ_id)
        return _records(
            id=self._ids("user_identifiers", owner.size),
            user_id=self.user_id[owner],
            id_type=np.where(ordinal == 0, "BARCODE", "UNIV_ID").astype(object),
            value=np.where(ordinal == 0, barcode[owner], univ_id[owner]),
            status="ACTIVE",
            segment_type=self._segment_type(owner),
        )

    def _addresses(self) -> list[dict]:
        rng = self.rng
        counts = np.where(self.contact, 1, (rng.random(self.n) < 0.97).astype(int) + (rng.random(self.n) < 0.25))
        owner, ordinal = _expand(counts)
        size = owner.size
        city = rng.integers(len(_CITIES), size=size).tolist()
        postal_number = rng.random(size).tolist()
        house = rng.integers(1, 250, size=size).tolist()
        street = rng.integers(len(_STREETS), size=size).tolist()
        second = np.where(self.student, "school", np.where(self.staff, "work", "alternative"))
        types = np.where(ordinal == 0, np.where(self.contact, "work", "home")[owner], second[owner]).astype(object)
        return _records(
            id=self._ids("user_addresses", size),
            user_id=self.user_id[owner],
            line1=[f"{h} {_STREETS[s]}" for h, s in zip(house, street)],
            line2=_where(rng.random(size) < 0.15, np.array([f"Apt {k}" for k in rng.integers(1, 60, size).tolist()],
                                                             dtype=object)),
            city=[_CITIES[c][0] for c in city],
            state_province=[_CITIES[c][1] for c in city],
            postal_code=[_CITIES[c][2].format(*(int(r * _CITIES[c][3]),) * _CITIES[c][2].count("{"))
                         for c, r in zip(city, postal_number)],
            country=[_CITIES[c][4] for c in city],
            start_date=self._date(-self._days(30, 3650, size)),
            address_types=types,
            preferred=ordinal == 0,
            segment_type=self._segment_type(owner),
        )

    def _emails(self) -> list[dict]:
        rng = self.rng
        counts = np.where(self.contact, 1, (rng.random(self.n) < 0.95).astype(int) + (rng.random(self.n) < 0.25))
        owner, ordinal = _expand(counts)
        first_kind = np.where(self.student, 0, np.where(self.staff, 1, np.where(self.contact, 3, 2)))
        kind = np.where(ordinal == 0, first_kind[owner], 2).tolist()
        domains = ("student.example.edu", "example.edu", "mail.example.com", "vendor.example.com")
        email_types = ("school", "work", "personal", "work")
        first, last, number = self.first.tolist(), self.last.tolist(), self.number.tolist()
        addresses = [
            f"{_FIRST_ASCII[first[o]]}.{_LAST_ASCII[last[o]]}{number[o] % 997 if k == 2 else ''}@{domains[k]}"
            for o, k in zip(owner.tolist(), kind)
        ]
        return _records(
            id=self._ids("user_emails", owner.size),
            user_id=self.user_id[owner],
            email_address=addresses,
            email_types=[email_types[k] for k in kind],
            preferred=ordinal == 0,
            segment_type=self._segment_type(owner),
        )

    def _phones(self) -> list[dict]:
        rng = self.rng
        counts = np.where(self.contact, 1, (rng.random(self.n) < 0.8).astype(int) + (rng.random(self.n) < 0.15))
        owner, ordinal = _expand(counts)
        size = owner.size
        mobile = (ordinal == 0) & ~self.contact[owner] & (rng.random(size) < 0.75)
        types = np.where(mobile, "mobile", np.where(self.staff[owner] | self.contact[owner], "office", "home"))
        return _records(
            id=self._ids("user_phones", size),
            user_id=self.user_id[owner],
            phone_number=[f"+1555{k:07d}" for k in rng.integers(0, 10**7, size).tolist()],
            phone_types=types.astype(object),
            preferred=ordinal == 0,
            preferred_sms=mobile & (rng.random(size) < 0.5),
            segment_type=self._segment_type(owner),
        )

    def _notes(self) -> list[dict]:
        rng = self.rng
        owner, _ = _expand((rng.random(self.n) < 0.15).astype(int) + (rng.random(self.n) < 0.05))
        size = owner.size
        note = rng.integers(len(_NOTES), size=size)
        return _records(
            id=self._ids("user_notes", size),
            user_id=self.user_id[owner],
            note_type=_NOTE_TYPE[note],
            note_text=_NOTE_TEXT[note],
            user_viewable=rng.random(size) < 0.3,
            popup_note=_NOTE_TYPE[note] == "POPUP",
            created_by=self._pick(_NOTE_AUTHOR, size),
            created_date=self._time(-self._days(1, 1460, size)),
            segment_type="Internal",
        )

    def _attachments(self) -> list[dict]:
        owner = np.flatnonzero(self.rng.random(self.n) < 0.01)
        return _records(
            id=self._ids("user_attachments", owner.size),
            user_id=self.user_id[owner],
            file_name="id-scan.txt",
            type="text/plain",
            notes="ID checked at the desk",
            content=[f"ID checked at the desk for {p}\n".encode() for p in self.primary_id[owner].tolist()],
        )

    def _roles(self) -> list[dict]:
        # Every user is a Patron; some staff also work the circulation desk, at one library or two.
        rng = self.rng
        desk = self.staff & ~self.duplicate & (rng.random(self.n) < 0.4)
        second_desk = desk & (rng.random(self.n) < 0.25)
        owner = np.concatenate([np.arange(self.n), np.flatnonzero(desk), np.flatnonzero(second_desk)])
        role = np.repeat(np.array([PATRON_ROLE, CIRCULATION_DESK_OPERATOR, CIRCULATION_DESK_OPERATOR], dtype=object),
                         [self.n, desk.sum(), second_desk.sum()])
        scope = np.repeat(np.array(["MAIN", "MAIN", "SCI"], dtype=object), [self.n, desk.sum(), second_desk.sum()])
        order = np.argsort(owner, kind="stable")
        owner, role, scope = owner[order], role[order], scope[order]
        return _records(
            id=self._ids("user_roles", owner.size),
            user_id=self.user_id[owner],
            role_type=role,
            scope=scope,
            status="ACTIVE",
        )

    def _blocks(self) -> list[dict]:
        rng = self.rng
        overdue = self.n_overdue > 0
        owner = np.flatnonzero(rng.random(self.n) < np.where(overdue, 0.2, 0.01) * ~self.contact)
        size = owner.size
        kind = np.where(overdue[owner], 2, rng.integers(0, 2, size=size))
        expires = rng.random(size) < 0.5
        return _records(
            id=self._ids("user_blocks", size),
            user_id=self.user_id[owner],
            block_type=np.array([b[0] for b in _BLOCKS], dtype=object)[kind],
            block_description=np.array([b[1] for b in _BLOCKS], dtype=object)[kind],
            block_status="ACTIVE",
            block_note=np.array([b[2] for b in _BLOCKS], dtype=object)[kind],
            created_by="circ.desk",
            created_date=self._time(-self._days(1, 180, size)),
            expiry_date=np.where(expires, self._date(self._days(30, 365, size)), np.datetime64("NaT")),
            segment_type="Internal",
        )

    def _statistics(self) -> list[dict]:
        rng = self.rng
        counts = ((rng.random(self.n) < 0.35) & ~self.contact) * (1 + (rng.random(self.n) < 0.3))
        owner, ordinal = _expand(counts)
        size = owner.size
        return _records(
            id=self._ids("user_statistics", size),
            user_id=self.user_id[owner],
            statistic_category=np.where(ordinal == 0, self._pick(_SUBJECTS, size), self._pick(_RESIDENCES, size)),
            category_type=np.where(ordinal == 0, "FACULTY", "RESIDENCE").astype(object),
            segment_type="External",
        )

    def _proxies(self) -> list[dict]:
        if self.n < 2:
            return []
        owner = np.flatnonzero((self.rng.random(self.n) < 0.005) & ~self.contact & ~self.duplicate)
        other = (owner + 1 + self.rng.integers(0, self.n - 1, size=owner.size)) % self.n
        return _records(
            id=self._ids("user_proxies", owner.size),
            user_id=self.user_id[owner],
            proxy_for_primary_id=self.primary_id[other],
        )

    def _loans(self) -> list[dict]:
        rng = self.rng
        owner, ordinal = _expand(self.n_complete_loans + self.n_active_loans)
        size = owner.size
        ids = self._ids("loans", size)
        active = ordinal >= self.n_complete_loans[owner]
        overdue = active & (ordinal - self.n_complete_loans[owner] < self.n_overdue[owner])
        # Due 28 days after the loan at 23:59: overdue loans fell due before today, the others fall due after it.
        loan_day = np.where(
            overdue, -self._days(29, 180, size),
            np.where(active, -self._days(0, 27, size), self.history_end[owner] - self._days(45, 1095, size)),
        )
        loan_time = self._time(loan_day)
        due = (self._date(loan_day + 28).astype("datetime64[s]") + np.timedelta64(23 * 3600 + 59 * 60, "s"))
        returned = np.where(active, np.datetime64("NaT"), self._time(loan_day + self._days(1, 40, size)))
        lost = overdue & (rng.random(size) < 0.1)
        return _records(
            id=ids,
            user_id=self.user_id[owner],
            loan_id=[f"L{k:09d}" for k in ids.tolist()],
            item_barcode=[f"I{k:09d}" for k in rng.integers(0, 10**9, size).tolist()],
            title=self._pick(_TITLE, size),
            loan_date=loan_time,
            due_date=due,
            return_date=returned,
            loan_status=np.where(active, "ACTIVE", "COMPLETE").astype(object),
            process_status=np.where(lost, "LOST", "NORMAL").astype(object),
            library=self._pick(_LIBRARY, size, _LIBRARY_SHARE),
        )

    def _requests(self) -> list[dict]:
        rng = self.rng
        owner, ordinal = _expand(self.n_history_requests + self.n_active_requests)
        size = owner.size
        ids = self._ids("requests", size)
        active = ordinal >= self.n_history_requests[owner]
        day = np.where(active, -self._days(0, 30, size), self.history_end[owner] - self._days(1, 1095, size))
        return _records(
            id=ids,
            user_id=self.user_id[owner],
            request_id=[f"R{k:09d}" for k in ids.tolist()],
            request_type=self._pick(_REQUEST_TYPES, size, (0.8, 0.12, 0.08)),
            request_status=np.where(active, self._pick(_ACTIVE_REQUEST_STATUS, size, (0.4, 0.3, 0.3)), "HISTORY"),
            title=self._pick(_TITLE, size),
            request_date=self._date(day),
            pickup_location_library=self._pick(_LIBRARY, size, _LIBRARY_SHARE),
        )

    def _fees(self) -> dict[str, list[dict]]:
        rng = self.rng
        owner, ordinal = _expand(self.n_fees)
        size = owner.size
        ids = self._ids("fees", size)
        state = rng.choice(4, size=size, p=(0.6, 0.15, 0.03, 0.22))
        owes = self.owes[owner]
        state = np.where(owes, state, FEE_PAID)
        # A user who owes has at least one fee still open.
        state = np.where(owes & (ordinal == 0) & (state == FEE_PAID), FEE_FULL, state)

        kind = rng.choice(len(_FEE_TYPES), size=size, p=_FEE_TYPE_SHARE)
        overdue_fine = 50 + 25 * np.minimum(rng.exponential(12, size).astype(np.int64), 98)   # 0.50 .. 25.00
        replacement = 100 * rng.integers(25, 151, size)                                       # 25.00 .. 150.00
        process = 500 * rng.integers(1, 5, size)                                              # 5.00 .. 20.00
        damage = 100 * rng.integers(5, 81, size)                                              # 5.00 .. 80.00
        renewal = 500 * rng.integers(1, 3, size)                                              # 5.00 or 10.00
        amount = np.choose(kind, [overdue_fine, replacement, process, damage, renewal])

        # Paid fees are settled in one payment or two; partly paid ones have had one payment.
        two_payments = (state == FEE_PAID) & (rng.random(size) < 0.2)
        part = np.clip((amount * rng.uniform(0.1, 0.9, size)).astype(np.int64), 1, amount - 1)
        first_payment = np.where(state == FEE_PAID, np.where(two_payments, part, amount), part)
        second_payment = amount - part
        n_payments = np.select([two_payments, state == FEE_PAID, state == FEE_PARTLY_PAID], [2, 1, 1], 0)
        balance = np.select([state == FEE_PAID, state == FEE_PARTLY_PAID], [0, amount - part], amount)

        creation_day = self.history_end[owner] - self._days(1, 700, size)
        creation = self._time(creation_day)
        item_fee = _FEE_TYPES[kind] != "CARDRENEWAL"
        fees = _records(
            id=ids,
            user_id=self.user_id[owner],
            fee_id=[f"F{k:09d}" for k in ids.tolist()],
            fee_type=_FEE_TYPES[kind],
            status=np.select([state == FEE_PAID, state == FEE_IN_DISPUTE], ["CLOSED", "INDISPUTE"], "ACTIVE").astype(object),
            balance_minor=balance,
            original_amount_minor=amount,
            creation_time=creation,
            comment=_where(state == FEE_IN_DISPUTE, "Patron disputes the charge"),
            owner=self._pick(_LIBRARY, size, _LIBRARY_SHARE),
            barcode=_where(item_fee, np.array([f"I{k:09d}" for k in rng.integers(0, 10**9, size).tolist()], dtype=object)),
            title=_where(item_fee, self._pick(_TITLE, size)),
        )

        fee, nth = _expand(n_payments)
        count = fee.size
        paid_day = np.minimum(creation_day[fee] + self._days(1, 60, count) * (nth + 1), -1)
        paid_at = np.maximum(self._time(paid_day), creation[fee] + np.timedelta64(3600, "s"))
        transactions = _records(
            id=self._ids("fee_transactions", count),
            fee_id=ids[fee],
            type="PAYMENT",
            amount_minor=np.where(nth == 0, first_payment[fee], second_payment[fee]),
            comment=self._pick(_PAYMENT_COMMENTS, count),
            transaction_time=paid_at,
        )
        return {"fees": fees, "fee_transactions": transactions}
