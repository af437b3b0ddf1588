"""What the library keeps on a demo account besides its contact details: identifiers, notes,
attachments, roles, blocks, statistics and proxies."""
from __future__ import annotations

import numpy as np

from tasks.devtools.demo.activity import Activity
from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.people import People
from tasks.devtools.demo.rows import expand, records

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


def identifiers(chunk: Chunk, who: People) -> list[dict]:
    # Multiplying by a number coprime to 10 permutes the values modulo 10^k: unique, but not sequential.
    numbers = chunk.number.tolist()
    barcode = np.array([f"3{(k * 15485863 + 271828) % 10**13:013d}" for k in numbers], dtype=object)
    univ_id = np.array([f"{(k * 7919 + 104729) % 10**9:09d}" for k in numbers], dtype=object)
    has_univ_id = (np.isin(who.user_group, ["UNDERGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI"])
                   & ~who.duplicate & (chunk.rng.random(chunk.n) < 0.9))
    owner, ordinal = expand(1 + has_univ_id)
    return records(
        id=chunk.ids("user_identifiers", owner.size),
        user_id=who.user_id[owner],
        id_type=np.where(ordinal == 0, "BARCODE", "UNIV_ID").astype(object),
        value=np.where(ordinal == 0, barcode[owner], univ_id[owner]),
        status="ACTIVE",
        segment_type=who.segment_type(owner),
    )


def notes(chunk: Chunk, who: People) -> list[dict]:
    rng = chunk.rng
    owner, _ = expand((rng.random(chunk.n) < 0.15).astype(int) + (rng.random(chunk.n) < 0.05))
    size = owner.size
    note = rng.integers(len(_NOTES), size=size)
    return records(
        id=chunk.ids("user_notes", size),
        user_id=who.user_id[owner],
        note_type=_NOTE_TYPE[note],
        note_text=_NOTE_TEXT[note],
        user_viewable=rng.random(size) < 0.3,
        popup_note=_NOTE_TYPE[note] == "POPUP",
        created_by=chunk.pick(_NOTE_AUTHOR, size),
        created_date=chunk.time(-chunk.days(1, 1460, size)),
        segment_type="Internal",
    )


def attachments(chunk: Chunk, who: People) -> list[dict]:
    owner = np.flatnonzero(chunk.rng.random(chunk.n) < 0.01)
    return records(
        id=chunk.ids("user_attachments", owner.size),
        user_id=who.user_id[owner],
        file_name="id-scan.txt",
        type="text/plain",
        notes="ID checked at the desk",
        content=[f"ID checked at the desk for {p}\n".encode() for p in who.primary_id[owner].tolist()],
    )


def roles(chunk: Chunk, who: People) -> list[dict]:
    # Every user is a Patron; some staff also work the circulation desk, at one library or two.
    rng, n = chunk.rng, chunk.n
    desk = who.staff & ~who.duplicate & (rng.random(n) < 0.4)
    second_desk = desk & (rng.random(n) < 0.25)
    owner = np.concatenate([np.arange(n), np.flatnonzero(desk), np.flatnonzero(second_desk)])
    role = np.repeat(np.array([PATRON_ROLE, CIRCULATION_DESK_OPERATOR, CIRCULATION_DESK_OPERATOR], dtype=object),
                     [n, desk.sum(), second_desk.sum()])
    scope = np.repeat(np.array(["MAIN", "MAIN", "SCI"], dtype=object), [n, desk.sum(), second_desk.sum()])
    order = np.argsort(owner, kind="stable")
    owner, role, scope = owner[order], role[order], scope[order]
    return records(
        id=chunk.ids("user_roles", owner.size),
        user_id=who.user_id[owner],
        role_type=role,
        scope=scope,
        status="ACTIVE",
    )


def blocks(chunk: Chunk, who: People, activity: Activity) -> list[dict]:
    rng = chunk.rng
    overdue = activity.n_overdue > 0
    owner = np.flatnonzero(rng.random(chunk.n) < np.where(overdue, 0.2, 0.01) * ~who.contact)
    size = owner.size
    kind = np.where(overdue[owner], 2, rng.integers(0, 2, size=size))
    expires = rng.random(size) < 0.5
    return records(
        id=chunk.ids("user_blocks", size),
        user_id=who.user_id[owner],
        block_type=np.array([b[0] for b in _BLOCKS], dtype=object)[kind],
        block_description=np.array([b[1] for b in _BLOCKS], dtype=object)[kind],
        block_status="ACTIVE",
        block_note=np.array([b[2] for b in _BLOCKS], dtype=object)[kind],
        created_by="circ.desk",
        created_date=chunk.time(-chunk.days(1, 180, size)),
        expiry_date=np.where(expires, chunk.date(chunk.days(30, 365, size)), np.datetime64("NaT")),
        segment_type="Internal",
    )


def statistics(chunk: Chunk, who: People) -> list[dict]:
    rng = chunk.rng
    counts = ((rng.random(chunk.n) < 0.35) & ~who.contact) * (1 + (rng.random(chunk.n) < 0.3))
    owner, ordinal = expand(counts)
    size = owner.size
    return records(
        id=chunk.ids("user_statistics", size),
        user_id=who.user_id[owner],
        statistic_category=np.where(ordinal == 0, chunk.pick(_SUBJECTS, size), chunk.pick(_RESIDENCES, size)),
        category_type=np.where(ordinal == 0, "FACULTY", "RESIDENCE").astype(object),
        segment_type="External",
    )


def proxies(chunk: Chunk, who: People) -> list[dict]:
    if chunk.n < 2:
        return []
    owner = np.flatnonzero((chunk.rng.random(chunk.n) < 0.005) & ~who.contact & ~who.duplicate)
    other = (owner + 1 + chunk.rng.integers(0, chunk.n - 1, size=owner.size)) % chunk.n
    return records(
        id=chunk.ids("user_proxies", owner.size),
        user_id=who.user_id[owner],
        proxy_for_primary_id=who.primary_id[other],
    )
