"""Flow-run heartbeats that stop the moment the run ends.

Prefect 3.9.1's heartbeat thread (`prefect.flow_engine._send_heartbeats`, PrefectHQ/prefect#19641) sleeps
in steps of one whole second and the engine joins it when the flow run finishes, so every run ends up to a
second after its work: 0.85 s of a 2.8 s job command, measured with py-spy (BENCHMARKS.md, change 18).
These are the same heartbeats (same interval, same events, same stop at a final state); the thread waits
on the stop event instead of sleeping, so the join returns at once.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

from prefect import flow_engine

_PREFECTS_OWN = getattr(flow_engine, "_send_heartbeats", None)


@contextlib.contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    seconds = engine.heartbeat_seconds
    if seconds is None:
        yield
        return
    seconds = max(seconds, flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            run = engine.flow_run
            if run and run.state and run.state.is_final():
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:  # noqa: BLE001 - a missed heartbeat must not fail the run (as in Prefect)
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            stop.wait(seconds)

    # The thread sees the caller's settings (its PREFECT_API_URL), as Prefect's own does.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)


def install() -> None:
    """Use these heartbeats in the flow engine. Only where the engine still has the function this
    replaces (a Prefect upgrade that renames it keeps Prefect's own, which is slower but right)."""
    if _PREFECTS_OWN is not None and flow_engine._send_heartbeats is _PREFECTS_OWN:
        flow_engine._send_heartbeats = send_heartbeats
