"""The outcome of deciding one unit of work: ELIGIBLE, or the reason code it is left out with.

The codes are the outer contract's vocabulary (../shared/CONTRACT.md: never renamed, only added to).
Pure constants, so the rules of every job can use them without importing the engine.
"""
ELIGIBLE = "ELIGIBLE"
CHANGED_SINCE_SELECTION = "CHANGED_SINCE_SELECTION"

# Purge User Records
PROTECTED = "PROTECTED"
ACTIVE_LOANS = "ACTIVE_LOANS"
ACTIVE_REQUESTS = "ACTIVE_REQUESTS"
OWES_ABOVE_THRESHOLD = "OWES_ABOVE_THRESHOLD"
HAS_CREDIT = "HAS_CREDIT"  # an active CREDIT fee: the library owes the user money

# Bulk Fine Waiving
ABOVE_FINE_THRESHOLD = "ABOVE_FINE_THRESHOLD"
HAS_OVERDUE_LOANS = "HAS_OVERDUE_LOANS"

# Merge Users
SAME_USER = "SAME_USER"
USER_IN_SEVERAL_PAIRS = "USER_IN_SEVERAL_PAIRS"
USER_NOT_FOUND = "USER_NOT_FOUND"
FROM_NOT_PATRON_ONLY = "FROM_NOT_PATRON_ONLY"
COPY_AS_INTERNAL_REQUIRED = "COPY_AS_INTERNAL_REQUIRED"
