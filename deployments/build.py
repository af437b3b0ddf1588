"""The deployments of prefect.yaml as Python objects, for `deployments/deploy.py` (a work pool and a
worker) and `deployments/serve.py` (one process): the same names, schedules, time zone, parameters,
tags, descriptions and concurrency limits, read from that one file so the ways of deploying never drift.

On top of what `prefect deploy --all` makes, each deployment's form gets the library's codes as
dropdowns: the codes of the code table a parameter names (`Form(codes=...)` in the job's parameter
model), read from the library database when deploying, without the internal ones (USER_PURGED), and
no "(Optional)" labels. Deploy again after the code tables change; the flow checks codes at run time
anyway (a code removed since deploying is refused in words).
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


def read_config(path: Path = PROJECT / "prefect.yaml") -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def flow_of(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def concurrency(spec: Any):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    if spec is None or isinstance(spec, int):
        return spec
    return ConcurrencyLimitConfig(**{k: v for k, v in spec.items() if v is not None})


def schedules(specs: list[dict[str, Any]] | None):
    from prefect.schedules import Cron

    return [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True), parameters=s.get("parameters") or {})
            for s in specs or []]


def job_env(spec: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in ((spec.get("work_pool") or {}).get("job_variables", {}).get("env", {})).items()}


def code_choices(model, read_codes) -> dict[str, list[str]]:
    """parameter -> the codes the form offers: the table's codes without the internal ones."""
    from tasks.engine.parameters import form_of

    choices = {}
    for name, field in model.model_fields.items():
        form = form_of(field)
        if form.codes:
            choices[name] = [c for c in sorted(read_codes(form.codes)) if c not in form.internal]
    return choices


def with_form_choices(deployment, job, read_codes) -> None:
    """Patch the deployment's parameter schema (what the UI renders and the server checks a run
    against): codes as dropdowns, and every parameter but those a person may leave empty (dates, lists,
    text areas, numbers that start empty) listed as required (the form then shows no "(Optional)" on
    them), with every form default in the deployment's parameters so a Quick run and the schedule's
    runs still pass the server's check."""
    from pydantic import MISSING
    from pydantic_core import PydanticUndefined

    from tasks.engine.flow import form_signature, optional_in_form

    schema = deployment._parameter_openapi_schema
    props: dict[str, Any] = schema.properties
    for name, codes in code_choices(job.parameters, read_codes).items():
        prop = props[name]
        if prop.get("type") == "array":
            prop["items"] = {"type": "string", "enum": codes}
        else:
            prop.pop("minLength", None)
            prop.pop("maxLength", None)
            prop["enum"] = codes
    defaults = {}
    for name, parameter in form_signature(job.parameters).parameters.items():
        default = parameter.default.default
        if default not in (..., PydanticUndefined, MISSING) and props[name].get("format") != "date":
            defaults[name] = default
    deployment.parameters = {**defaults, **(deployment.parameters or {})}
    # Not dates (a required date must be picked on every run), nor lists, text areas or numbers that
    # start empty: the 3.9.1 form drops an emptied field's value and then refuses the run ("'user_groups'
    # is a required property"). They are optional in truth (empty: all, none, not given), and the form says so.
    optional = optional_in_form(job.parameters)
    schema.required = [n for n in props if n not in optional]
    for prop in props.values():
        if prop.get("format") == "date":  # the form's own check takes "" for a bad date; no default is empty
            prop.pop("default", None)


def database_codes():
    """A reader of the library database's code tables (DATABASE_URL or DATABASE_URL_SECRET_BLOCK)."""
    from tasks.db.engine import get_engine, read_connection
    from tasks.library.codes import code_values

    engine = get_engine()

    def read(table: str) -> set[str]:
        with read_connection(engine) as conn:
            return code_values(conn, table)

    return read


def runner_deployments(*, from_source: bool, read_codes=None, config: dict[str, Any] | None = None) -> list:
    """Every deployment of prefect.yaml. `from_source`: flow runs start in this checkout (a worker);
    otherwise the flows run in the serving process."""
    from prefect import Flow

    config = config or read_config()
    deployments = []
    for spec in config["deployments"]:
        env = job_env(spec)
        for key, value in env.items():  # what a worker sets for the flow run, also when reading codes
            os.environ.setdefault(key, value)
        job_flow = flow_of(spec["entrypoint"])
        source = Flow.from_source(source=str(PROJECT), entrypoint=spec["entrypoint"]) if from_source else job_flow
        pool = spec.get("work_pool") or {}
        deployment = source.to_deployment(
            name=spec["name"],
            description=spec.get("description"),
            version=str(spec["version"]) if spec.get("version") else None,
            tags=spec.get("tags"),
            parameters=spec.get("parameters"),
            schedules=schedules(spec.get("schedules")),
            concurrency_limit=concurrency(spec.get("concurrency_limit")),
            **({"work_queue_name": pool.get("work_queue_name"), "job_variables": pool.get("job_variables")}
               if from_source else {}),
        )
        # Housekeeping flows are not jobs: they have no parameter model whose codes could be offered.
        job = getattr(job_flow, "job", None)
        if read_codes is not None and job is not None:
            with_form_choices(deployment, job, read_codes)
        deployments.append((pool.get("name"), deployment))
    return deployments
