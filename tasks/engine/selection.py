"""Select -> decide: candidates stream from SQL in chunks and are decided by pure pandas rules; a
selection ordered by its key is tallied unit by unit (tasks/engine/tally.py), so neither the raw rows nor
the decided rows of a whole library are ever held at once."""
from __future__ import annotations

import contextlib
import itertools
from types import SimpleNamespace
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Executable, TextClause

from tasks.db.engine import get_engine, read_connection
from tasks.engine.definition import JobDefinition, JobRun, Preview
from tasks.engine.parameters import JobParameters
from tasks.db.sql import sql_for
from tasks.engine.tally import Tally
from tasks.reasons import ELIGIBLE

SELECT_CHUNK_ROWS = 50_000


def read_chunks(conn: Connection, name: str | Executable, params: dict[str, Any],
                chunksize: int = SELECT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Run the statement `name` from sql/ (or a statement of tasks/db/statements.py) and yield its rows
    as DataFrames of at most `chunksize`. On PostgreSQL a server-side cursor keeps the whole result out
    of client memory."""
    statement = sql_for(conn, name) if isinstance(name, str) else name
    if conn.dialect.name == "postgresql" and isinstance(statement, TextClause):
        rows_and_columns = _driver_chunks(conn, statement, params, chunksize)
    else:
        rows_and_columns = _result_chunks(conn, statement, params, chunksize)
    for rows, columns in rows_and_columns:
        yield pd.DataFrame.from_records(rows, columns=columns)


def _result_chunks(conn: Connection, statement: Executable, params: dict[str, Any],
                   chunksize: int) -> Iterator[tuple[list[tuple], list[str]]]:
    result = conn.execute(statement, params, execution_options={"stream_results": True, "yield_per": chunksize})
    columns = list(result.keys())
    try:
        rows = result.fetchmany(chunksize)
        # The rules still see the columns, so an empty library decides like any other.
        yield [tuple(r) for r in rows], columns
        while rows := result.fetchmany(chunksize):
            # Plain tuples: pandas probes each SQLAlchemy Row for attributes, which costs more than the
            # query on a batch re-check (profiled, BENCHMARKS.md).
            yield [tuple(r) for r in rows], columns
    finally:
        result.close()


_cursor_names = itertools.count(1)


def _driver_chunks(conn: Connection, statement: TextClause, params: dict[str, Any],
                   chunksize: int) -> Iterator[tuple[list[tuple], list[str]]]:
    """A statement of sql/ on psycopg2's own named cursor, in the connection's transaction: its rows come
    as the tuples psycopg2 makes, with no SQLAlchemy Row in between (a text statement has no result
    types to apply), which halves the Python time of reading a selection (BENCHMARKS.md change 21)."""
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    for name, bind in compiled.binds.items():   # what SQLAlchemy would do to them (a list as one ARRAY)
        process = bind.type.bind_processor(conn.dialect)
        if process is not None and name in values:
            values[name] = process(values[name])
    cursor = conn.connection.dbapi_connection.cursor(name=f"lumj_read_{next(_cursor_names)}")
    # The engine's statement events still see it (benchmarks/profile_job.py times statements by them).
    context = SimpleNamespace(compiled=compiled)
    try:
        cursor.itersize = chunksize
        conn.dispatch.before_cursor_execute(conn, cursor, compiled.string, values, context, False)
        cursor.execute(compiled.string, values)
        rows = cursor.fetchmany(chunksize)
        conn.dispatch.after_cursor_execute(conn, cursor, compiled.string, values, context, False)
        columns = [d[0] for d in cursor.description]
        yield rows, columns   # empty, it still names the columns
        while rows := cursor.fetchmany(chunksize):
            yield rows, columns
    finally:
        cursor.close()


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
    """The selection read in chunks, decided and tallied unit by unit, never held whole: the preview of a
    dry run, or the selection of a real run whose first batches already run while it is read
    (tasks/engine/runner.py says when).

    Made, the statement has run and its first chunk is read: on PostgreSQL the rest of the rows come
    from the same statement's snapshot, so whatever changes after this moment is seen only by the
    batches' re-reads under lock (CHANGED_SINCE_SELECTION), exactly as when the whole library is read
    first. The rows come ordered by the job's key (its `streams_selection`), so the rows of the unit a
    chunk ends in wait for the next chunk and are decided with the rest of that unit; the batches are
    the ones `split_batches` would make of the whole selection, and `preview()` is the one
    `make_preview` would make of it (tasks/engine/tally.py), once every unit has been read."""

    def __init__(self, job: JobDefinition, run: JobRun, parameters: JobParameters):
        self.job, self.run, self.parameters = job, run, parameters
        self._held = contextlib.ExitStack()
        conn = self._held.enter_context(read_connection(get_engine(run.database_url)))
        chunks = iter(job.select(conn, parameters, run, None))
        first = next(chunks)
        self._chunks = itertools.chain([first], chunks)
        self.tally = Tally(job)

    def units(self) -> Iterator[pd.DataFrame]:
        """The decided rows of whole units, a chunk at a time, each tallied for the preview."""
        key = self.job.key
        waiting: pd.DataFrame | None = None   # the rows of the unit the last chunk ended in
        for chunk in self._chunks:
            if waiting is not None and len(waiting):
                chunk = pd.concat([waiting, chunk], ignore_index=True) if len(chunk) else waiting
            if len(chunk):
                at_end = chunk[key].to_numpy() == chunk[key].iloc[-1]
                waiting, chunk = chunk[at_end], chunk[~at_end]
            yield self._decided(chunk)
        self.close()
        if waiting is not None and len(waiting):
            yield self._decided(waiting)

    def _decided(self, rows: pd.DataFrame) -> pd.DataFrame:
        decided = self.job.decide(rows, self.parameters, self.run)
        self.tally.add(decided)
        return decided

    def batches(self, batch_size: int) -> Iterator[pd.DataFrame]:
        key = self.job.key
        pending: pd.DataFrame | None = None
        for decided in self.units():
            eligible = decided[decided["outcome"] == ELIGIBLE]
            pending = eligible if pending is None else pd.concat([pending, eligible], ignore_index=True)
            keys = pd.unique(pending[key])
            while len(keys) >= batch_size:
                group, keys = keys[:batch_size], keys[batch_size:]
                taken = pending[key].isin(group)
                yield pending[taken]
                pending = pending[~taken]
        if pending is not None and len(pending):
            keys = pd.unique(pending[key])
            for start in range(0, len(keys), batch_size):
                yield pending[pending[key].isin(keys[start:start + batch_size])]

    def preview(self) -> Preview:
        return self.tally.preview()

    def close(self) -> None:
        self._held.close()


@task(name="select-and-decide", cache_policy=NO_CACHE)
def select_and_tally(job: JobDefinition, run: JobRun, parameters: JobParameters) -> Preview:
    """The preview of the whole selection, read and decided chunk by chunk (a dry run of a job whose
    selection comes ordered by its key): nothing of it is kept but the preview."""
    selection = StreamedSelection(job, run, parameters)
    try:
        for _ in selection.units():
            pass
    finally:
        selection.close()
    return selection.preview()
