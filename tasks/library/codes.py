"""The administrator's code tables (user groups, fee types, waive reasons, ...).

All tables share one database table keyed by (code_table, code). A job's code parameters name their
table (`Form(codes=...)`); the engine checks them against it (tasks/engine/parameters.py, check_codes),
so every "unknown code" message lists the valid ones the same way.
"""
from __future__ import annotations

from sqlalchemy import Connection, delete, select

from tasks.errors import InvalidInput
from tasks.db.schema import codes
from tasks.db.statements import insert_or_ignore, insert_or_update

# table name -> (what it holds, the codes a new library starts with)
CODE_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "user-group": ("user groups", {
        "UNDERGRAD": "Undergraduate", "GRAD": "Graduate", "FACULTY": "Faculty", "STAFF": "Staff",
        "ALUMNI": "Alumni", "PUBLIC": "Public", "CHILD": "Child",
    }),
    "record-type": ("user record types", {"PUBLIC": "Public", "STAFF": "Staff", "CONTACT": "Contact"}),
    "account-type": ("account types", {"INTERNAL": "Internal", "EXTERNAL": "External"}),
    "user-status": ("user statuses", {"ACTIVE": "Active", "INACTIVE": "Inactive"}),
    "fee-type": ("fee (fine) types", {
        "OVERDUEFINE": "Overdue fine", "RECALLEDOVERDUEFINE": "Recalled overdue fine",
        "LOSTITEMREPLACEMENTFEE": "Lost item replacement fee", "LOSTITEMPROCESSFEE": "Lost item process fee",
        "DAMAGEDITEMFINE": "Damaged item fine", "CARDRENEWAL": "Card renewal", "OTHER": "Other",
    }),
    "fee-status": ("fee statuses", {"ACTIVE": "Active", "CLOSED": "Closed", "INDISPUTE": "In dispute"}),
    "transaction-type": ("fee transaction types", {"PAYMENT": "Payment", "WAIVE": "Waive"}),
    "waive-reason": ("reasons for waiving a fee", {
        "USER_PURGED": "User purged", "AMNESTY": "Fine amnesty", "ERROR": "Charged in error",
        "GOODWILL": "Goodwill", "UNCOLLECTABLE": "Uncollectable",
    }),
    "note-type": ("user note types", {
        "GENERAL": "General", "CIRCULATION": "Circulation", "REGISTRAR": "Registrar", "POPUP": "Pop-up",
    }),
    "id-type": ("user identifier types", {"BARCODE": "Barcode", "UNIV_ID": "University ID", "OTHER_ID_1": "Other ID 1"}),
    "block-type": ("user block types", {"GENERAL": "General", "LOAN": "Loan"}),
    "block-description": ("user block descriptions", {"GLOBAL": "Global", "LOST_CARD": "Lost card", "OVERDUE": "Overdue items"}),
    "role-type": ("user role types", {"200": "Patron"}),
    "role-status": ("role statuses", {"ACTIVE": "Active", "INACTIVE": "Inactive"}),
    "library": ("libraries and scopes", {"MAIN": "Main library"}),
    "address-type": ("address types", {"home": "Home", "work": "Work", "school": "School", "alternative": "Alternative"}),
    "email-type": ("email types", {"personal": "Personal", "work": "Work", "school": "School"}),
    "phone-type": ("phone types", {"home": "Home", "mobile": "Mobile", "office": "Office"}),
    "country": ("countries", {}),
    "statistic-category": ("statistical categories", {}),
    "category-type": ("statistical category types", {}),
}


def _check_table(table: str) -> None:
    if table not in CODE_TABLES:
        raise InvalidInput(f"unknown code table {table!r}; valid tables: {', '.join(sorted(CODE_TABLES))}")


def seed_codes(conn: Connection) -> None:
    rows = [
        {"code_table": table, "code": code, "description": desc}
        for table, (_, defaults) in CODE_TABLES.items()
        for code, desc in defaults.items()
    ]
    conn.execute(insert_or_ignore(conn, codes), rows)


def list_codes(conn: Connection, table: str | None = None) -> list[dict]:
    if table is not None:
        _check_table(table)
    query = select(codes).order_by(codes.c.code_table, codes.c.code)
    if table:
        query = query.where(codes.c.code_table == table)
    return [dict(r._mapping) for r in conn.execute(query)]


def code_values(conn: Connection, table: str) -> set[str]:
    return {r.code for r in conn.execute(select(codes.c.code).where(codes.c.code_table == table))}


def descriptions(conn: Connection, table: str) -> dict[str, str]:
    return dict(conn.execute(select(codes.c.code, codes.c.description).where(codes.c.code_table == table)).all())


def add_code(conn: Connection, table: str, code: str, description: str) -> bool:
    """Add or re-describe a code; returns True when it was new."""
    _check_table(table)
    if not code or not code.strip():
        raise InvalidInput("a code may not be empty")
    if len(code) > 64:
        raise InvalidInput(f"code {code[:20]!r}... is longer than 64 characters")
    new = code not in code_values(conn, table)
    conn.execute(insert_or_update(conn, codes, ["code_table", "code"], {"description": description})
                 .values(code_table=table, code=code, description=description))
    return new


def remove_code(conn: Connection, table: str, code: str) -> None:
    _check_table(table)
    if code not in code_values(conn, table):
        raise InvalidInput(f"{table} has no code {code!r}; its codes: {', '.join(sorted(code_values(conn, table))) or '(none)'}")
    conn.execute(delete(codes).where(codes.c.code_table == table, codes.c.code == code))


def ensure_codes(conn: Connection, table: str, found: dict[str, str | None]) -> None:
    """Add codes met while loading that the table lacks (code -> desc from the file)."""
    known = code_values(conn, table)
    rows = [
        {"code_table": table, "code": code, "description": desc or code}
        for code, desc in found.items()
        if code and code not in known
    ]
    if rows:
        conn.execute(insert_or_ignore(conn, codes), rows)
