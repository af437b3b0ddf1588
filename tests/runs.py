"""Running a job's flow from a test the way the command line does: the final state and the summary."""
from __future__ import annotations

from typing import Any


def run_flow(flow, **parameters: Any) -> tuple[Any, dict | None]:
    """(final Prefect state, run summary); the summary is None when the run was stopped before it was
    recorded (invalid parameters, another real run in progress)."""
    state = flow(**parameters, return_state=True)
    data = state.result(raise_on_failure=False)
    return state, data if isinstance(data, dict) else getattr(data, "summary", None)
