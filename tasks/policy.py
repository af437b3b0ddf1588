"""The delete-user policy: what purging a user keeps (placeholder until the purge job lands)."""
from __future__ import annotations

POLICY_LEVELS = {
    "keep-fully-reportable": "keep the user row with names and identifiers for reporting",
    "keep-statistics": "keep only statistical fields",
    "keep-statistics-remove-id": "keep only statistical fields and remove the primary id (default)",
    "fully-remove": "remove the user and everything attached",
}
