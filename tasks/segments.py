"""The parts of a user record: one table of them, read by the merge rules and statements, the
delete-user policy and the Alma format, so a part is described once (as Koha keeps the tables a merge
touches in one mapping). Pure data: the rules read it without a database.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    kind: str                   # its name in counts and summaries ("addresses")
    table: str                  # the table its rows live in
    segment: str | None         # the Merge Users segment that copies it; None: it always moves
    segment_typed: bool         # carries segment_type (Internal / External), set by a merge
    personal: bool              # reaches a person: the delete-user policy removes it at every level
    preferred: bool = False     # has preferred flags: a merge first applies sql/merge/unprefer_<kind>
    clash_rule: bool = False    # a merge moves it by a clash rule of its own (sql/merge/move_<kind>)


PARTS: tuple[Part, ...] = (
    # Fulfilment and money: always move with a merge; kept by the policy's keep-* levels.
    Part("loans", "loans", None, False, False),
    Part("requests", "requests", None, False, False),
    Part("fees", "fees", None, False, False),
    # Segments: copied by a merge when chosen.
    Part("addresses", "user_addresses", "contacts", True, True, preferred=True),
    Part("emails", "user_emails", "contacts", True, True, preferred=True),
    Part("phones", "user_phones", "contacts", True, True, preferred=True),
    Part("identifiers", "user_identifiers", "identifiers", True, True, clash_rule=True),
    Part("notes", "user_notes", "notes", True, True),
    Part("blocks", "user_blocks", "blocks", True, True),
    # Statistics are what keep-statistics keeps: the policy removes only their free-text notes.
    Part("statistics", "user_statistics", "statistics", True, False),
    Part("attachments", "user_attachments", "attachments", False, True),
    Part("roles", "user_roles", "roles", False, True, clash_rule=True),
    # proxy_for: users the From user may act for; proxied_by: users who act for the From user.
    Part("proxy_for", "user_proxies", "proxies", False, True, clash_rule=True),
    Part("proxied_by", "user_proxies", "proxies", False, True, clash_rule=True),
)

SEGMENTS: tuple[str, ...] = tuple(dict.fromkeys(p.segment for p in PARTS if p.segment))
ALWAYS_MOVED: tuple[str, ...] = (*(p.kind for p in PARTS if p.segment is None), "fee_transactions")
SEGMENT_KINDS: dict[str, tuple[str, ...]] = {s: tuple(p.kind for p in PARTS if p.segment == s) for s in SEGMENTS}
KINDS: tuple[str, ...] = ALWAYS_MOVED + tuple(k for kinds in SEGMENT_KINDS.values() for k in kinds)
# The tables the delete-user policy empties of a purged user's rows (proxies have their own statement).
PERSONAL_TABLES: tuple[str, ...] = tuple(dict.fromkeys(p.table for p in PARTS
                                                       if p.personal and p.table != "user_proxies"))

# The tables a purged user's rows stay in at the keep-* levels: the parts the policy keeps, and the fee
# ledger under the fees (keep-statistics and stricter empty their `extra`).
KEPT_TABLES: tuple[str, ...] = (*dict.fromkeys(p.table for p in PARTS if not p.personal), "fee_transactions")


def part(kind: str) -> Part:
    return next(p for p in PARTS if p.kind == kind)
