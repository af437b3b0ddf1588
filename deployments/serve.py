"""Serve the job deployments from one long-running process, without a work pool or worker:

    .venv/bin/python deployments/serve.py          # from the project directory; Ctrl-C stops it

The deployments are the ones prefect.yaml defines (same names, schedule, time zone, parameters, tags,
descriptions and concurrency limits), read from that file so the two ways of running never drift
apart. Flow runs execute in subprocesses of this process, with its environment (DATABASE_URL or
DATABASE_URL_SECRET_BLOCK). Use this *or* `prefect deploy --all` + a worker, not both: they register
deployments under the same names.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def _concurrency(spec: Any):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    if spec is None or isinstance(spec, int):
        return spec
    return ConcurrencyLimitConfig(**{k: v for k, v in spec.items() if v is not None})


def _schedules(specs: list[dict[str, Any]] | None):
    from prefect.schedules import Cron

    return [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True), parameters=s.get("parameters") or {})
            for s in specs or []]


def build_deployments(config_path: Path = PROJECT / "prefect.yaml") -> list:
    """Runner deployments for every deployment in prefect.yaml (cron schedules; one work pool's env)."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    deployments = []
    for spec in config["deployments"]:
        env = (spec.get("work_pool") or {}).get("job_variables", {}).get("env", {})
        for key, value in env.items():  # what a worker would set for the flow run
            os.environ.setdefault(key, str(value))
        deployments.append(_flow(spec["entrypoint"]).to_deployment(
            name=spec["name"],
            description=spec.get("description"),
            version=str(spec["version"]) if spec.get("version") else None,
            tags=spec.get("tags"),
            parameters=spec.get("parameters"),
            schedules=_schedules(spec.get("schedules")),
            concurrency_limit=_concurrency(spec.get("concurrency_limit")),
        ))
    return deployments


def main() -> None:
    from prefect import serve

    os.chdir(PROJECT)  # flows find sql/ and data/ relative to the project
    serve(*build_deployments())


if __name__ == "__main__":
    main()
