"""A job as a Prefect flow: its parameters as top-level arguments (the UI form shows each as its own
field, in the order of `form_order`, with its title and description), and the run's outcome as a named
final state (*Dry run*, *Refused*, *Rejected*, ...) that a person reads at a glance and automations match.

The flow's signature is made from the job's parameter model, so the model stays the one declaration.
Prefect does not validate the arguments (`validate_parameters=False`): the model does, so bad input
from the form ends the run at once as *Invalid parameters* with one line naming the field by its title.
"""
from __future__ import annotations

import inspect
from typing import Annotated, Any

from prefect import Flow, flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed, State
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tasks.engine.definition import JobDefinition
from tasks.engine.outcome import Kind
from tasks.engine.parameters import form_order, naming, parse, run_date_and_time, title_of
from tasks.engine.runner import JobResult, run_job
from tasks.errors import InvalidInput, JobFailed, JobRefused, RunNotApproved

_STATES = {"COMPLETED": Completed, "CANCELLED": Cancelled, "FAILED": Failed}


def form_signature(model) -> inspect.Signature:
    """The model's fields as keyword-only parameters, constraints in the annotation (Prefect keeps
    those) and title/description/default in a Field default (Prefect reads those from the default)."""
    parameters = []
    for position, name in enumerate(form_order(model)):
        field: FieldInfo = model.model_fields[name]
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()
        extra = dict(field.json_schema_extra or {}) if isinstance(field.json_schema_extra, dict) else {}
        extra.update(title=title_of(name, field), position=position)
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        parameters.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=FieldInfo(default=default, description=field.description, json_schema_extra=extra)))
    return inspect.Signature(parameters)


def field_titles(model) -> dict[str, str]:
    return {name: title_of(name, field) for name, field in model.model_fields.items()}


# What calling a job's flow directly raises for a run that did not complete (a cancelled or failed
# state must carry an exception; its `summary` is the run summary).
_RAISES = {Kind.REFUSED: JobRefused, Kind.FAILED: JobFailed, Kind.REJECTED: RunNotApproved,
           Kind.APPROVAL_TIMED_OUT: RunNotApproved}


def final_state(job: JobDefinition, result: JobResult) -> State:
    outcome = result.outcome
    kind = outcome.kind
    message = outcome.reason or _done_line(job, result)
    if kind is Kind.FAILED and outcome.error:
        message = f"{outcome.error}. {message}"
    if kind.state_type == "COMPLETED":
        return Completed(name=kind.state_name, message=message, data=result.summary)
    return _STATES[kind.state_type](name=kind.state_name, message=message,
                                    data=_RAISES[kind](message, result.summary))


def _done_line(job: JobDefinition, result: JobResult) -> str:
    done = job.unit.count(result.outcome.units_done)
    skipped = sum(result.outcome.skipped.values())
    return f"{done} {'would be ' if result.run.dry_run else ''}done; {skipped:,} skipped"


def stopped_before_run(kind: Kind, message: str) -> State:
    """Invalid parameters, or another real run holds the job: one line in the log, no traceback."""
    get_run_logger().error("%s: %s", kind.state_name, message)
    error = InvalidInput(message) if kind is Kind.INVALID else JobRefused(message)
    return _STATES[kind.state_type](name=kind.state_name, message=message, data=error)


def flow_run_name(job: JobDefinition):
    """Flow runs named after the job and run date (`purge-2026-11-28`, `waive-2026-11-28-dry-run`),
    so the runs list reads as a diary; a run with bad parameters is named too."""

    def name() -> str:
        values = flow_run.parameters or {}
        as_of = values.get("as_of")
        day = as_of if isinstance(as_of, str) and as_of else (as_of or run_date_and_time(None)[0])
        return f"{job.command}-{day}" + ("" if values.get("dry_run") is False else "-dry-run")

    return name


def job_flow(job: JobDefinition) -> Flow:
    """The Prefect flow of a job."""
    titles = field_titles(job.parameters)

    def run(**values: Any) -> State:
        # Arguments the caller left out arrive as the signature's FieldInfo defaults: the model fills them.
        given = {k: v for k, v in values.items() if not isinstance(v, FieldInfo)}
        try:
            with naming(titles):
                result = run_job(job, parse(job.parameters, given))
        except InvalidInput as exc:
            return stopped_before_run(Kind.INVALID, str(exc))
        except JobRefused as exc:
            return stopped_before_run(Kind.REFUSED, str(exc))
        state = final_state(job, result)
        get_run_logger().info("%s: %s", state.name, state.message)
        return state

    run.__signature__ = form_signature(job.parameters)
    run.__name__ = run.__qualname__ = job.name.replace("-", "_")
    run.__doc__ = job.summary_line
    job_run_flow = flow(name=job.name, description=job.summary_line, flow_run_name=flow_run_name(job),
                        validate_parameters=False, log_prints=True)(run)
    job_run_flow.job = job
    return job_run_flow
