"""Housekeeping for Undo a merge: remove the undo records of merges older than the retention period
(`undo-retention show|set`), nightly (prefect.yaml, deployment remove-expired-undo-records). The undo
record holds a deleted patron's whole record, so it is kept no longer than it can be used."""
from prefect import flow, get_run_logger

from tasks.db.engine import get_engine
from tasks.engine.records import utcnow
from tasks.library.init_db import init_db
from tasks.library.undo_retention import remove_expired


@flow(name="remove-expired-undo-records", log_prints=False)
def remove_expired_undo_records() -> int:
    """Remove the merge undo records past the retention period; returns how many."""
    engine = get_engine()
    init_db(engine)
    removed = remove_expired(engine, utcnow())
    get_run_logger().info("removed %s expired merge undo records", removed)
    return removed
