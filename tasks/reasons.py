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

# Undo a merge
ALREADY_UNMERGED = "ALREADY_UNMERGED"      # reported, never undone twice
TO_USER_CHANGED = "TO_USER_CHANGED"        # the To user was purged or merged away since
UNDO_EXPIRED = "UNDO_EXPIRED"              # the undo record is past retention (or removed): no undo
PRIMARY_ID_TAKEN = "PRIMARY_ID_TAKEN"      # another user holds the From user's primary id now
IDENTIFIER_TAKEN = "IDENTIFIER_TAKEN"      # another user holds an identifier the From user must get back
# Find Duplicate Users (a pair left out of the review queue)
REJECTED_BEFORE = "REJECTED_BEFORE"        # a person rejected this pair: never proposed again
ALREADY_IN_QUEUE = "ALREADY_IN_QUEUE"      # proposed, accepted or merged already
