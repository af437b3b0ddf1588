"""Deploy the jobs to the Prefect server, with the library's codes as dropdowns in the run forms:

    .venv/bin/python deployments/deploy.py          # from the project directory, after every change

It registers the deployments prefect.yaml defines (docs/operations/server.md, step 3) to
their work pool, with flow runs starting in this checkout, like `prefect deploy --all`, and in addition
reads the waive reasons, fee types and user groups from the library database (DATABASE_URL or
DATABASE_URL_SECRET_BLOCK, as the worker has them) and offers them as choices (deployments/build.py).
Run it again after changing a code table. `prefect deploy --all` still works: the same forms, with the
codes as free text.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deployments.build import PROJECT, database_codes, runner_deployments  # noqa: E402


def main() -> int:
    import os

    from prefect import deploy

    os.chdir(PROJECT)
    by_pool: dict[str, list] = {}
    for pool, deployment in runner_deployments(from_source=True, read_codes=database_codes()):
        by_pool.setdefault(pool, []).append(deployment)
    for pool, deployments in by_pool.items():
        deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
               ignore_warnings=True)
        for d in deployments:
            print(f"deployed {d.flow_name}/{d.name} to work pool {pool}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
