"""The demo users' contact segments: addresses, e-mail addresses and phone numbers, one of each kind
preferred."""
from __future__ import annotations

import unicodedata

import numpy as np

from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.people import FIRST_NAMES, LAST_NAMES, People
from tasks.devtools.demo.rows import expand, records, where

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

_SPECIAL_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L",
                                  "đ": "d", "'": "", " ": ""})


def _ascii(name: str) -> str:
    """José -> jose, Øyvind -> oyvind: e-mail addresses stay plain ASCII."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_SPECIAL_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode().lower()


_FIRST_ASCII = [_ascii(n) for n in FIRST_NAMES]
_LAST_ASCII = [_ascii(n) for n in LAST_NAMES]


def _contact_rows(chunk: Chunk, who: People, table: str, owner: np.ndarray, ordinal: np.ndarray,
                  **columns) -> list[dict]:
    """Rows of one kind of contact: each user's first one is preferred, and a segment is Internal or
    External as its account is. `columns` are drawn by the caller, in the order the stream expects."""
    return records(id=chunk.ids(table, owner.size), user_id=who.user_id[owner], **columns,
                   preferred=ordinal == 0, segment_type=who.segment_type(owner))


def addresses(chunk: Chunk, who: People) -> list[dict]:
    rng = chunk.rng
    counts = np.where(who.contact, 1, (rng.random(chunk.n) < 0.97).astype(int) + (rng.random(chunk.n) < 0.25))
    owner, ordinal = expand(counts)
    size = owner.size
    city = rng.integers(len(_CITIES), size=size).tolist()
    postal_number = rng.random(size).tolist()
    house = rng.integers(1, 250, size=size).tolist()
    street = rng.integers(len(_STREETS), size=size).tolist()
    second = np.where(who.student, "school", np.where(who.staff, "work", "alternative"))
    types = np.where(ordinal == 0, np.where(who.contact, "work", "home")[owner], second[owner]).astype(object)
    return _contact_rows(
        chunk, who, "user_addresses", owner, ordinal,
        line1=[f"{h} {_STREETS[s]}" for h, s in zip(house, street)],
        line2=where(rng.random(size) < 0.15, np.array([f"Apt {k}" for k in rng.integers(1, 60, size).tolist()],
                                                        dtype=object)),
        city=[_CITIES[c][0] for c in city],
        state_province=[_CITIES[c][1] for c in city],
        postal_code=[_CITIES[c][2].format(*(int(r * _CITIES[c][3]),) * _CITIES[c][2].count("{"))
                     for c, r in zip(city, postal_number)],
        country=[_CITIES[c][4] for c in city],
        start_date=chunk.date(-chunk.days(30, 3650, size)),
        address_types=types,
    )


def emails(chunk: Chunk, who: People) -> list[dict]:
    rng = chunk.rng
    counts = np.where(who.contact, 1, (rng.random(chunk.n) < 0.95).astype(int) + (rng.random(chunk.n) < 0.25))
    owner, ordinal = expand(counts)
    first_kind = np.where(who.student, 0, np.where(who.staff, 1, np.where(who.contact, 3, 2)))
    kind = np.where(ordinal == 0, first_kind[owner], 2).tolist()
    domains = ("student.example.edu", "example.edu", "mail.example.com", "vendor.example.com")
    email_types = ("school", "work", "personal", "work")
    first, last, number = who.first.tolist(), who.last.tolist(), chunk.number.tolist()
    addresses = [
        f"{_FIRST_ASCII[first[o]]}.{_LAST_ASCII[last[o]]}{number[o] % 997 if k == 2 else ''}@{domains[k]}"
        for o, k in zip(owner.tolist(), kind)
    ]
    return _contact_rows(
        chunk, who, "user_emails", owner, ordinal,
        email_address=addresses,
        email_types=[email_types[k] for k in kind],
    )


def phones(chunk: Chunk, who: People) -> list[dict]:
    rng = chunk.rng
    counts = np.where(who.contact, 1, (rng.random(chunk.n) < 0.8).astype(int) + (rng.random(chunk.n) < 0.15))
    owner, ordinal = expand(counts)
    size = owner.size
    mobile = (ordinal == 0) & ~who.contact[owner] & (rng.random(size) < 0.75)
    types = np.where(mobile, "mobile", np.where(who.staff[owner] | who.contact[owner], "office", "home"))
    return _contact_rows(
        chunk, who, "user_phones", owner, ordinal,
        phone_number=[f"+1555{k:07d}" for k in rng.integers(0, 10**7, size).tolist()],
        phone_types=types.astype(object),
        preferred_sms=mobile & (rng.random(size) < 0.5),
    )
