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

import numpy as np
from sqlalchemy import Engine, select

from tasks.db import schema
from tasks.db.engine import write_transaction
from tasks.devtools.demo import account, circulation, contacts, fees, people
from tasks.devtools.demo.activity import Activity
from tasks.devtools.demo.catalogue import LIBRARIES
from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.ids import advance_id_sequences, first_free_ids
from tasks.errors import InvalidInput
from tasks.library.codes import ensure_codes

# Part of the determinism contract: the same seed with another chunk size would draw other users.
CHUNK_USERS = 20_000

# Parents before children, so foreign keys hold at every insert.
TABLES = (
    schema.users, schema.user_identifiers, schema.user_addresses, schema.user_emails, schema.user_phones,
    schema.user_notes, schema.user_attachments, schema.user_roles, schema.user_blocks,
    schema.user_statistics, schema.user_proxies, schema.loans, schema.requests, schema.fees,
    schema.fee_transactions,
)


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
    counts = {table.name: 0 for table in TABLES}
    with write_transaction(engine) as conn:
        if conn.execute(select(schema.users.c.id).limit(1)).first() is not None:
            raise InvalidInput(
                "the database already contains users; demo-data only fills an empty library "
                "(point DATABASE_URL at a new database)"
            )
        _ensure_demo_codes(conn)
        next_ids = first_free_ids(conn, TABLES)
        for chunk_no, first in enumerate(range(0, int(users), CHUNK_USERS)):
            rng = np.random.default_rng(np.random.SeedSequence(int(seed) % 2**64, spawn_key=(chunk_no,)))
            rows = chunk_rows(Chunk(rng, first, min(CHUNK_USERS, int(users) - first), today, next_ids))
            for table in TABLES:
                batch = rows[table.name]
                if batch:
                    conn.execute(table.insert(), batch)
                    counts[table.name] += len(batch)
            del rows
        advance_id_sequences(conn, TABLES)
    return counts


def chunk_rows(chunk: Chunk) -> dict[str, list[dict]]:
    """Every table's rows for one chunk of users. The order is part of the determinism contract: each
    part draws from the chunk's one random stream in turn, so moving a line here changes the library."""
    who = people.People(chunk)
    activity = Activity(chunk, who)
    return {
        "users": people.users(who),
        "user_identifiers": account.identifiers(chunk, who),
        "user_addresses": contacts.addresses(chunk, who),
        "user_emails": contacts.emails(chunk, who),
        "user_phones": contacts.phones(chunk, who),
        "user_notes": account.notes(chunk, who),
        "user_attachments": account.attachments(chunk, who),
        "user_roles": account.roles(chunk, who),
        "user_blocks": account.blocks(chunk, who, activity),
        "user_statistics": account.statistics(chunk, who),
        "user_proxies": account.proxies(chunk, who),
        "loans": circulation.loans(chunk, who, activity),
        "requests": circulation.requests(chunk, who, activity),
        **fees.fees_and_ledger(chunk, who, activity),
    }


def _ensure_demo_codes(conn) -> None:
    """The demo uses a few codes a new library does not start with; the code tables must know them."""
    ensure_codes(conn, "library", LIBRARIES)
    ensure_codes(conn, "country", contacts.COUNTRIES)
    ensure_codes(conn, "statistic-category", account.STATISTIC_CATEGORIES)
    ensure_codes(conn, "category-type", account.CATEGORY_TYPES)
    ensure_codes(conn, "role-type", account.ROLE_TYPES)
