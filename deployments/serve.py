"""Serve the job deployments from one long-running process, without a work pool or worker:

    .venv/bin/python deployments/serve.py          # from the project directory; Ctrl-C stops it

The deployments are the ones prefect.yaml defines (same names, schedule, time zone, parameters, tags,
descriptions and concurrency limits, and the code-table dropdowns: deployments/build.py), read from
that file so the ways of running never drift apart. Flow runs execute in subprocesses of this process, with its environment (DATABASE_URL or
DATABASE_URL_SECRET_BLOCK). Use this *or* `prefect deploy --all` + a worker, not both: they register
deployments under the same names.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deployments.build import PROJECT, database_codes, runner_deployments  # noqa: E402


def build_deployments() -> list:
    """Runner deployments for every deployment in prefect.yaml, with the code-table dropdowns."""
    return [d for _, d in runner_deployments(from_source=False, read_codes=database_codes())]


def main() -> None:
    from prefect import serve

    os.chdir(PROJECT)  # flows find sql/ and data/ relative to the project
    serve(*build_deployments())


if __name__ == "__main__":
    main()
