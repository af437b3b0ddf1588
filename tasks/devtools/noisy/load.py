"""`noisy-library`: the realistic noisy library (tasks/devtools/noisy/library.py) put into a library
database, with the truth kept beside it in the table `noisy_truth` (not part of the library schema:
only this generator makes it). Used by the tests and benchmarks of Find Duplicate Users."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, select

from tasks.db import schema
from tasks.db.engine import write_transaction
from tasks.devtools.demo.ids import advance_id_sequences
from tasks.devtools.noisy.library import DEFAULT_MIX, HARD_MIX, generate_library
from tasks.errors import InvalidInput
from tasks.library.codes import ensure_codes

MIXES = {"default": DEFAULT_MIX, "hard": HARD_MIX}
ROWS_PER_INSERT = 20_000

truth_metadata = MetaData()
noisy_truth = Table(
    "noisy_truth", truth_metadata,
    Column("user_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("person_id", BigInteger, nullable=False),
    Column("dup_kind", String(255)),
    Column("lookalike_kind", String(32)),
    Column("lookalike_of", BigInteger),
)
TABLES = (schema.users, schema.user_identifiers, schema.user_addresses, schema.user_emails, schema.user_phones)


def _explode(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    ex = frame[["user_id", column]].explode(column).dropna()
    return ex[ex[column] != ""]


def library_rows(lib: pd.DataFrame) -> dict[str, list[dict]]:
    birth = pd.to_datetime(lib["birth_date"]).dt.date
    users = pd.DataFrame({
        "id": lib["user_id"].astype("int64"), "primary_id": lib["primary_id"],
        "first_name": lib["first_name"], "middle_name": lib["middle_name"].where(lib["middle_name"] != "None"),
        "last_name": lib["last_name"], "user_group": lib["user_group"], "record_type": "PUBLIC",
        "account_type": lib["account_type"], "status": "ACTIVE",
        "birth_date": [None if pd.isna(d) else d for d in birth],
    })
    users = users.astype(object).where(users.notna(), None)
    emails = _explode(lib, "emails")
    phones = _explode(lib, "phones")
    postal = _explode(lib, "postal_codes")
    # An identifier (type and value) belongs to one user in the library (a unique constraint, as in
    # Alma): where the generator gives a duplicate record its original's UNIV_ID, the first record
    # in the library keeps it and the other record goes without.
    ids = _explode(lib, "identifiers").drop_duplicates("identifiers")
    id_type, value = ids["identifiers"].str.split(":", n=1).str[0], ids["identifiers"].str.split(":", n=1).str[1]

    def recs(frame: pd.DataFrame) -> list[dict]:
        return frame.to_dict("records")

    return {
        "users": recs(users),
        "user_emails": recs(pd.DataFrame({"user_id": emails["user_id"].astype("int64"),
                                          "email_address": emails["emails"], "email_types": "personal",
                                          "segment_type": "External"})),
        "user_phones": recs(pd.DataFrame({"user_id": phones["user_id"].astype("int64"),
                                          "phone_number": phones["phones"], "phone_types": "mobile",
                                          "segment_type": "External"})),
        "user_addresses": recs(pd.DataFrame({"user_id": postal["user_id"].astype("int64"),
                                             "postal_code": postal["postal_codes"], "address_types": "home",
                                             "segment_type": "External"})),
        "user_identifiers": recs(pd.DataFrame({"user_id": ids["user_id"].astype("int64"), "id_type": id_type,
                                               "value": value, "status": "ACTIVE", "segment_type": "External"})),
    }


def make_noisy_library(engine: Engine, people: int, seed: int, mix: str = "default") -> pd.DataFrame:
    """Fill an empty library with a noisy library of `people` people (about 3% of them with duplicate
    records, and look-alikes: twins, parent and child, namesakes, households). Returns the truth
    (user_id, person_id, dup_kind, lookalike_kind, lookalike_of), also written to `noisy_truth`."""
    if mix not in MIXES:
        raise InvalidInput(f"mix must be one of {', '.join(MIXES)}, got {mix!r}")
    lib = generate_library(int(people), seed=int(seed), mix=MIXES[mix])
    rows = library_rows(lib)
    truth = lib[["user_id", "person_id", "dup_kind", "lookalike_kind", "lookalike_of"]].copy()
    with write_transaction(engine) as conn:
        if conn.execute(select(schema.users.c.id).limit(1)).first() is not None:
            raise InvalidInput("the database already contains users; noisy-library only fills an empty library")
        ensure_codes(conn, "user-group", {g: g for g in lib["user_group"].unique()})
        for table in TABLES:
            batch = rows[table.name]
            for start in range(0, len(batch), ROWS_PER_INSERT):
                conn.execute(table.insert(), batch[start:start + ROWS_PER_INSERT])
        advance_id_sequences(conn, TABLES)
        noisy_truth.drop(conn, checkfirst=True)
        noisy_truth.create(conn)
        records = truth.astype(object).to_dict("records")
        for start in range(0, len(records), ROWS_PER_INSERT):
            conn.execute(noisy_truth.insert(), records[start:start + ROWS_PER_INSERT])
    return truth


def read_truth(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(select(noisy_truth))
        return pd.DataFrame.from_records([tuple(r) for r in result], columns=list(result.keys()))
