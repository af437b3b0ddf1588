"""Select -> decide: candidates stream from SQL in chunks and are decided by pure pandas rules, so
memory holds only the compact decided rows, never the raw selection of a whole library."""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Executable

from tasks.db.engine import get_engine, read_connection
from tasks.engine.definition import JobDefinition, JobRun
from tasks.engine.parameters import JobParameters
from tasks.db.sql import sql_for
from tasks.reasons import ELIGIBLE

SELECT_CHUNK_ROWS = 50_000


def read_chunks(conn: Connection, name: str | Executable, params: dict[str, Any],
                chunksize: int = SELECT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Run the statement `name` from sql/ (or a statement of tasks/db/statements.py) and yield its rows
    as DataFrames of at most `chunksize`. On PostgreSQL a server-side cursor keeps the whole result out
    of client memory."""
    statement = sql_for(conn, name) if isinstance(name, str) else name
    result = conn.execute(statement, params,
                          execution_options={"stream_results": True, "yield_per": chunksize})
    columns = list(result.keys())
    yielded = False
    while True:
        rows = result.fetchmany(chunksize)
        if not rows:
            break
        yielded = True
        # Plain tuples: pandas probes each SQLAlchemy Row for attributes, which costs more than the
        # query on a batch re-check (profiled, BENCHMARKS.md).
        yield pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns)
    result.close()
    if not yielded:
        # The rules still see the columns, so an empty library decides like any other.
        yield pd.DataFrame.from_records([], columns=columns)


def restrict_params(keys: Sequence[Any] | None) -> dict[str, Any]:
    """Bind values for a selection that may be limited to some ids (a batch re-check)."""
    # numpy integers would bind as blobs on SQLite and silently match nothing.
    ids = [k.item() if hasattr(k, "item") else k for k in keys] if keys is not None else [-1]
    return {"restrict": 1 if keys is not None else 0, "ids": ids}


def decide_all(job: JobDefinition, conn: Connection, parameters: JobParameters, run: JobRun,
               keys: Sequence[Any] | None = None) -> pd.DataFrame:
    frames = [job.decide(chunk, parameters, run) for chunk in job.select(conn, parameters, run, keys)]
    non_empty = [f for f in frames if not f.empty]
    if not non_empty:
        return frames[0] if frames else pd.DataFrame({job.key: [], "outcome": []})
    return pd.concat(non_empty, ignore_index=True)


@task(name="select-and-decide", cache_policy=NO_CACHE)
def select_and_decide(job: JobDefinition, run: JobRun, parameters: JobParameters) -> pd.DataFrame:
    """Every candidate with its outcome: ELIGIBLE or the reason it is left out."""
    with read_connection(get_engine(run.database_url)) as conn:
        return decide_all(job, conn, parameters, run)


class StreamedSelection:
    """The selection read while its first batches already run (tasks/engine/runner.py says when).

    Made, the statement has run and its first chunk is read: on PostgreSQL the rest of the rows come
    from the same statement's snapshot, so whatever changes after this moment is seen only by the
    batches' re-reads under lock (CHANGED_SINCE_SELECTION), exactly as when the whole library is read
    first. The rows come ordered by the job's key (its `streams_selection`), so a unit whose rows
    straddle two chunks waits for the next one; the batches are the ones `split_batches` would make of
    the whole selection. `decisions()` is every decided row once the batches have taken them all."""

    def __init__(self, job: JobDefinition, run: JobRun, parameters: JobParameters):
        self.job, self.run, self.parameters = job, run, parameters
        self._held = contextlib.ExitStack()
        conn = self._held.enter_context(read_connection(get_engine(run.database_url)))
        chunks = iter(job.select(conn, parameters, run, None))
        first = next(chunks)
        self._chunks = itertools.chain([first], chunks)
        self._decided: list[pd.DataFrame] = []

    def batches(self, batch_size: int) -> Iterator[pd.DataFrame]:
        key = self.job.key
        pending: pd.DataFrame | None = None
        for chunk in self._chunks:
            decided = self.job.decide(chunk, self.parameters, self.run)
            self._decided.append(decided)
            eligible = decided[decided["outcome"] == ELIGIBLE]
            pending = eligible if pending is None else pd.concat([pending, eligible], ignore_index=True)
            keys = pd.unique(pending[key])
            if len(chunk):
                keys = keys[keys != chunk[key].iloc[-1]]   # its rows may go on in the next chunk
            while len(keys) >= batch_size:
                group, keys = keys[:batch_size], keys[batch_size:]
                taken = pending[key].isin(group)
                yield pending[taken]
                pending = pending[~taken]
        self.close()
        if pending is not None and len(pending):
            keys = pd.unique(pending[key])
            for start in range(0, len(keys), batch_size):
                yield pending[pending[key].isin(keys[start:start + batch_size])]

    def decisions(self) -> pd.DataFrame:
        non_empty = [f for f in self._decided if not f.empty]
        if not non_empty:
            return self._decided[0] if self._decided else pd.DataFrame({self.job.key: [], "outcome": []})
        return pd.concat(non_empty, ignore_index=True)

    def close(self) -> None:
        self._held.close()
