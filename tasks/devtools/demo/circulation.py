"""The demo users' loans and requests: mostly history, some active, some loans overdue or lost."""
from __future__ import annotations

import numpy as np

from tasks.devtools.demo.activity import Activity
from tasks.devtools.demo.catalogue import LIBRARY, LIBRARY_SHARE, TITLE
from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.people import People
from tasks.devtools.demo.rows import expand, records

_ACTIVE_REQUEST_STATUS = np.array(["NOT_STARTED", "IN_PROCESS", "ON_HOLD_SHELF"], dtype=object)
_REQUEST_TYPES = np.array(["HOLD", "DIGITIZATION", "BOOKING"], dtype=object)


def loans(chunk: Chunk, who: People, activity: Activity) -> list[dict]:
    rng = chunk.rng
    owner, ordinal = expand(activity.n_complete_loans + activity.n_active_loans)
    size = owner.size
    ids = chunk.ids("loans", size)
    active = ordinal >= activity.n_complete_loans[owner]
    overdue = active & (ordinal - activity.n_complete_loans[owner] < activity.n_overdue[owner])
    # Due 28 days after the loan at 23:59: overdue loans fell due before today, the others fall due after it.
    loan_day = np.where(
        overdue, -chunk.days(29, 180, size),
        np.where(active, -chunk.days(0, 27, size), who.history_end[owner] - chunk.days(45, 1095, size)),
    )
    loan_time = chunk.time(loan_day)
    due = (chunk.date(loan_day + 28).astype("datetime64[s]") + np.timedelta64(23 * 3600 + 59 * 60, "s"))
    returned = np.where(active, np.datetime64("NaT"), chunk.time(loan_day + chunk.days(1, 40, size)))
    lost = overdue & (rng.random(size) < 0.1)
    return records(
        id=ids,
        user_id=who.user_id[owner],
        loan_id=[f"L{k:09d}" for k in ids.tolist()],
        item_barcode=[f"I{k:09d}" for k in rng.integers(0, 10**9, size).tolist()],
        title=chunk.pick(TITLE, size),
        loan_date=loan_time,
        due_date=due,
        return_date=returned,
        loan_status=np.where(active, "ACTIVE", "COMPLETE").astype(object),
        process_status=np.where(lost, "LOST", "NORMAL").astype(object),
        library=chunk.pick(LIBRARY, size, LIBRARY_SHARE),
    )


def requests(chunk: Chunk, who: People, activity: Activity) -> list[dict]:
    owner, ordinal = expand(activity.n_history_requests + activity.n_active_requests)
    size = owner.size
    ids = chunk.ids("requests", size)
    active = ordinal >= activity.n_history_requests[owner]
    day = np.where(active, -chunk.days(0, 30, size), who.history_end[owner] - chunk.days(1, 1095, size))
    return records(
        id=ids,
        user_id=who.user_id[owner],
        request_id=[f"R{k:09d}" for k in ids.tolist()],
        request_type=chunk.pick(_REQUEST_TYPES, size, (0.8, 0.12, 0.08)),
        request_status=np.where(active, chunk.pick(_ACTIVE_REQUEST_STATUS, size, (0.4, 0.3, 0.3)), "HISTORY"),
        title=chunk.pick(TITLE, size),
        request_date=chunk.date(day),
        pickup_location_library=chunk.pick(LIBRARY, size, LIBRARY_SHARE),
    )
