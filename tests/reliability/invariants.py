"""What must hold in a library database whatever happened to a job (crash, fault, race), and a
canonical snapshot to compare two databases by what a librarian would see.

Every check returns a list of problems (empty = fine), so a failing test prints all of them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

# Everything that hangs off a user. Loans, requests and fees are fulfillment, the rest are segments.
SEGMENT_TABLES = ("user_identifiers", "user_addresses", "user_emails", "user_phones", "user_notes",
                  "user_attachments", "user_roles", "user_blocks", "user_statistics", "user_proxies")
FULFILLMENT_TABLES = ("loans", "requests", "fees")
OWNED_TABLES = SEGMENT_TABLES + FULFILLMENT_TABLES

# What the default delete-user policy (keep-statistics-remove-id) leaves of a purged user.
KEPT_BY_DEFAULT_POLICY = {"user_statistics", "loans", "requests", "fees"}

# Column values that legitimately differ between two runs doing the same work.
_VOLATILE_USER_COLUMNS = {"purged_at"}


@dataclass
class Snapshot:
    users: dict[int, dict[str, Any]]                   # user id -> columns (purged_at as a flag)
    owned: dict[str, Counter]                          # table -> Counter(user id -> rows)
    fees: dict[int, tuple]                             # fee row id -> (user, type, status, balance, original)
    transactions: Counter                              # (fee, type, amount, reason) multiset
    loans: Counter                                     # (loan_id, user, status) multiset
    requests: Counter                                  # (request_id, user, status) multiset
    proxies: Counter                                   # (user, proxy_for_primary_id) multiset

    def canonical(self) -> dict[str, Any]:
        return {"users": self.users, "owned": self.owned, "fees": self.fees, "transactions": self.transactions,
                "loans": self.loans, "requests": self.requests, "proxies": self.proxies}


def _rows(conn, sql: str) -> list[Any]:
    return conn.execute(text(sql)).all()


def snapshot(engine: Engine) -> Snapshot:
    """The state a librarian would compare, without ids of new rows, timestamps or run ids."""
    with engine.connect() as conn:
        users = {}
        for row in conn.execute(text("SELECT * FROM users")).mappings():
            values = {k: (str(v) if v is not None else None) for k, v in row.items() if k not in _VOLATILE_USER_COLUMNS}
            values["purged"] = row["purged_at"] is not None
            users[int(row["id"])] = values
        owned = {t: Counter({int(u): int(n) for u, n in _rows(conn, f"SELECT user_id, COUNT(*) FROM {t} GROUP BY user_id")})
                 for t in OWNED_TABLES}
        fees = {int(r[0]): (int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in _rows(
            conn, "SELECT id, user_id, fee_type, status, balance_minor, original_amount_minor FROM fees")}
        transactions = Counter((int(r[0]), r[1], int(r[2]), r[3]) for r in _rows(
            conn, "SELECT fee_id, type, amount_minor, reason FROM fee_transactions"))
        loans = Counter(tuple(r) for r in _rows(conn, "SELECT loan_id, user_id, loan_status FROM loans"))
        requests = Counter(tuple(r) for r in _rows(conn, "SELECT request_id, user_id, request_status FROM requests"))
        proxies = Counter(tuple(r) for r in _rows(conn, "SELECT user_id, proxy_for_primary_id FROM user_proxies"))
    return Snapshot(users, owned, fees, transactions, loans, requests, proxies)


def differences(a: Snapshot, b: Snapshot, limit: int = 10) -> list[str]:
    """Where two snapshots differ, in words (at most `limit` lines per part)."""
    out: list[str] = []
    for part, left in a.canonical().items():
        right = b.canonical()[part]
        if part == "owned":
            for table in left:
                if left[table] != right[table]:
                    keys = sorted(set(left[table]) | set(right[table]), key=str)
                    diff = [(k, left[table][k], right[table][k]) for k in keys if left[table][k] != right[table][k]]
                    out.append(f"{table}: {len(diff)} users differ, e.g. (user, a, b) {diff[:limit]}")
        elif isinstance(left, Counter):
            if left != right:
                out.append(f"{part}: only in a {list((left - right).items())[:limit]}, "
                           f"only in b {list((right - left).items())[:limit]}")
        elif left != right:
            keys = sorted(set(left) | set(right))
            diff = [(k, left.get(k), right.get(k)) for k in keys if left.get(k) != right.get(k)]
            out.append(f"{part}: {len(diff)} differ, e.g. {diff[:limit]}")
    return out


# ------------------------------------------------------------------ invariants that always hold


def ledger_errors(engine: Engine) -> list[str]:
    """Every fee's balance is its original amount minus its transactions."""
    with engine.connect() as conn:
        rows = _rows(conn, """
            SELECT f.id, f.balance_minor, f.original_amount_minor, COALESCE(SUM(t.amount_minor), 0)
            FROM fees f LEFT JOIN fee_transactions t ON t.fee_id = f.id
            GROUP BY f.id, f.balance_minor, f.original_amount_minor
            HAVING f.balance_minor <> f.original_amount_minor - COALESCE(SUM(t.amount_minor), 0)""")
    return [f"fee {r[0]}: balance {r[1]} != original {r[2]} - transactions {r[3]}" for r in rows]


def waived_twice(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = _rows(conn, "SELECT fee_id, COUNT(*) FROM fee_transactions WHERE type = 'WAIVE' "
                           "GROUP BY fee_id HAVING COUNT(*) > 1")
    return [f"fee {r[0]} has {r[1]} WAIVE transactions" for r in rows]


def money_totals(engine: Engine) -> tuple[int, int, int]:
    """(sum of original amounts, sum of balances, sum of transactions), in minor units."""
    with engine.connect() as conn:
        original, balance = conn.execute(text(
            "SELECT COALESCE(SUM(original_amount_minor), 0), COALESCE(SUM(balance_minor), 0) FROM fees")).one()
        moved = conn.execute(text("SELECT COALESCE(SUM(amount_minor), 0) FROM fee_transactions")).scalar()
    return int(original), int(balance), int(moved)


def money_errors(engine: Engine, before: Snapshot) -> list[str]:
    """Money in = money out: no fee is lost or invented, and every cent charged is still owed or
    accounted for by a transaction."""
    original, balance, moved = money_totals(engine)
    problems = []
    charged_before = sum(f[4] for f in before.fees.values())
    if original != charged_before:
        problems.append(f"fees charged changed: {charged_before} before, {original} after")
    if original != balance + moved:
        problems.append(f"money in {original} != owed {balance} + transactions {moved}")
    return problems


def orphan_errors(engine: Engine) -> list[str]:
    """No row belongs to a user who does not exist (foreign keys are on, but prove it)."""
    problems = []
    with engine.connect() as conn:
        for table in OWNED_TABLES:
            # user_id NULL: a loan, request or fee unlinked by Anonymise loan history, not an orphan.
            n = conn.execute(text(f"SELECT COUNT(*) FROM {table} t WHERE t.user_id IS NOT NULL AND NOT EXISTS "
                                  f"(SELECT 1 FROM users u WHERE u.id = t.user_id)")).scalar()
            if n:
                problems.append(f"{table}: {n} rows of users that do not exist")
    return problems


def common_errors(engine: Engine, before: Snapshot) -> list[str]:
    return ledger_errors(engine) + waived_twice(engine) + money_errors(engine, before) + orphan_errors(engine)


# ------------------------------------------------------------------ per job: all or nothing per unit


def purge_errors(before: Snapshot, after: Snapshot) -> list[str]:
    """Each user is either untouched (every segment as before) or purged completely as the default
    policy says: identifying data and segments gone, statistics and fulfillment history kept, fees
    waived. Nothing in between."""
    problems = []
    purged_ids = {before.users[u]["primary_id"] for u, v in after.users.items() if v["purged"] and u in before.users}
    for user, was in before.users.items():
        now = after.users.get(user)
        if now is None:
            problems.append(f"user {user} vanished (the default policy keeps an anonymous row)")
            continue
        if not now["purged"]:
            for table in OWNED_TABLES:
                if table == "user_proxies":
                    continue  # checked below: proxies for purged users go with them
                if after.owned[table][user] != before.owned[table][user]:
                    problems.append(f"user {user} not purged but {table} changed "
                                    f"{before.owned[table][user]} -> {after.owned[table][user]}")
            if now != was:
                problems.append(f"user {user} not purged but its row changed")
            continue
        if now["primary_id"] is not None or now["first_name"] is not None or now["last_name"] is not None:
            problems.append(f"purged user {user} still has identifying data")
        for table in OWNED_TABLES:
            expected = before.owned[table][user] if table in KEPT_BY_DEFAULT_POLICY else 0
            if after.owned[table][user] != expected:
                problems.append(f"purged user {user}: {table} has {after.owned[table][user]} rows, "
                                f"expected {expected}")
        open_fees = [f for f, v in after.fees.items() if v[0] == user and v[2] == "ACTIVE" and v[3] > 0]
        if open_fees:
            problems.append(f"purged user {user} still owes on fees {open_fees}")
    for (owner, target), n in after.proxies.items():
        if target in purged_ids:
            problems.append(f"user {owner} is still proxy for purged {target}")
    return problems


def waive_errors(before: Snapshot, after: Snapshot) -> list[str]:
    """Each fee is untouched or waived exactly (balance 0, CLOSED, one WAIVE of its old balance), and
    per user either none or all of the fees that were open got waived."""
    problems = []
    new_tx = after.transactions - before.transactions
    if before.transactions - after.transactions:
        problems.append(f"transactions lost: {list((before.transactions - after.transactions).items())[:5]}")
    waives = Counter()
    for (fee, kind, amount, _reason), n in new_tx.items():
        waives[fee] += n
        if kind != "WAIVE":
            problems.append(f"fee {fee}: unexpected new {kind} transaction")
        elif amount != before.fees[fee][3]:
            problems.append(f"fee {fee}: waived {amount}, but its balance was {before.fees[fee][3]}")
    by_user: dict[int, set[bool]] = {}
    for fee, (user, ftype, status, balance, original) in before.fees.items():
        now = after.fees[fee]
        waived = waives[fee] > 0
        if waived and (now[2] != "CLOSED" or now[3] != 0):
            problems.append(f"fee {fee} waived but left {now[2]} with balance {now[3]}")
        if not waived and now != (user, ftype, status, balance, original):
            problems.append(f"fee {fee} changed without a WAIVE transaction: {before.fees[fee]} -> {now}")
        if status == "ACTIVE" and balance > 0:
            by_user.setdefault(user, set()).add(waived)
    for user, seen in by_user.items():
        if len(seen) > 1:
            problems.append(f"user {user}: some open fees waived, others not (a batch half applied)")
    for user in before.users:
        for table in OWNED_TABLES:
            if after.owned[table][user] != before.owned[table][user]:
                problems.append(f"waive changed {table} of user {user}")
    return problems


def merge_errors(before: Snapshot, after: Snapshot, pairs: list[tuple[int, int]]) -> list[str]:
    """Each pair is merged completely (From gone, its loans, requests, fees and ledger now the To
    user's) or not at all (both users exactly as before)."""
    problems = []
    for source, target in pairs:
        gone = source not in after.users
        if not gone:
            for user in (source, target):
                for table in OWNED_TABLES:
                    if after.owned[table][user] != before.owned[table][user]:
                        problems.append(f"pair {source}->{target} not merged but {table} of {user} changed")
            continue
        if target not in after.users:
            problems.append(f"pair {source}->{target}: both users are gone")
            continue
        for table in FULFILLMENT_TABLES:
            want = before.owned[table][source] + before.owned[table][target]
            if after.owned[table][target] != want:
                problems.append(f"pair {source}->{target}: {table} of the To user {after.owned[table][target]}, "
                                f"expected {want}")
        moved_fees = [f for f, v in before.fees.items() if v[0] == source]
        for fee in moved_fees:
            if after.fees.get(fee, (None,))[0] != target:
                problems.append(f"pair {source}->{target}: fee {fee} did not move to the To user")
    return problems
