"""A job as a Prefect flow: its parameters as top-level arguments (the UI form shows each as its own
field, in the order of `form_order`, with its title and description), and the run's outcome as a named
final state (*Dry run*, *Refused*, *Rejected*, ...) that a person reads at a glance and automations match.

The flow's signature is made from the job's parameter model, so the model stays the one declaration.
Prefect does not validate the arguments (`validate_parameters=False`): the model does, so bad input
from the form ends the run at once as *Invalid parameters* with one line naming the field by its title.
"""
from __future__ import annotations

import datetime as dt
import inspect
import logging
import types
import typing
from decimal import Decimal
from typing import Annotated, Any, Literal

from prefect import Flow, flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed, State
from pydantic import MISSING, WithJsonSchema
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tasks.engine import heartbeats
from tasks.engine.definition import JobDefinition
from tasks.engine.outcome import Kind
from tasks.engine.parameters import (Form, form_of, form_order, names_in_use, naming, parse, run_date_and_time,
                                     title_of)
from tasks.engine.runner import JobResult, run_job
from tasks.errors import InvalidInput, JobFailed, JobRefused, JobStopped, RunNotApproved

_STATES = {"COMPLETED": Completed, "CANCELLED": Cancelled, "FAILED": Failed}


def form_signature(model) -> inspect.Signature:
    """The model's fields as keyword-only parameters in `form_order`, each with a JSON schema the Prefect
    3.9.1 run form renders well (`form_schema`), its title, description and form default. Prefect reads
    title, description and default from a FieldInfo default, and the schema from the annotation."""
    parameters = []
    for position, name in enumerate(form_order(model)):
        field: FieldInfo = model.model_fields[name]
        schema, default = form_schema(name, field)
        extra = dict(field.json_schema_extra or {}) if isinstance(field.json_schema_extra, dict) else {}
        extra.update(title=title_of(name, field), position=position)
        if schema is None:  # structured values (merge pairs): pydantic's own schema
            annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        else:
            annotation = Annotated[Any, WithJsonSchema(schema)]
        parameters.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=FieldInfo(default=default, description=field.description, json_schema_extra=extra)))
    return inspect.Signature(parameters)


_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum",
           "min_length": "minLength", "max_length": "maxLength"}
NUMBER_BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def _bounds(field: FieldInfo, keys: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for meta in field.metadata:
        for attr, key in _BOUNDS.items():
            value = getattr(meta, attr, None)
            if value is not None and key in keys:
                found[key] = float(value) if isinstance(value, Decimal) else value
    return found


def _optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _choices(annotation: Any) -> list[Any] | None:
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is Literal else None


def form_schema(name: str, field: FieldInfo) -> tuple[dict[str, Any] | None, Any]:
    """The field's JSON schema and default in the shapes the run form renders well (FINDINGS of the UI
    research): an amount is a number with its minimum (never `multipleOf`, which the server's check
    gets wrong for 0.07; the model checks the two decimals), a date a date picker ("" = not given), a
    fixed choice a dropdown, a list of choices a multi-select, a flag a switch, a list of lines
    (`Form(lines=True)`) a text area, and no `None` anywhere (no type switches): an optional value's
    form default says the same as None ("", 0 = no limit), or, where no value can (0 days means
    something), the field starts empty (`MISSING`: no default in the schema) and empty is None."""
    annotation, optional = _optional(field.annotation)
    default = field.get_default(call_default_factory=True)
    if default is PydanticUndefined:
        default = ...
    given = default is not ... and default is not None
    if form_of(field).lines:
        if typing.get_origin(annotation) is not list:
            raise TypeError(f"{name}: Form(lines=True) is for a list")
        return {"type": "string"}, "\n".join(str(v) for v in default or [])
    if annotation is Decimal:
        schema: dict[str, Any] = {"type": "number", **_bounds(field, NUMBER_BOUNDS)}
        places = next((m.decimal_places for m in field.metadata if getattr(m, "decimal_places", None)), None)
        if "exclusiveMinimum" in schema and places:  # "more than 0" with cents: at least 0.01
            schema["minimum"] = schema.pop("exclusiveMinimum") + 10 ** -places
        default = float(default) if given else (0 if default is None else default)
    elif annotation is dt.date:
        schema = {"type": "string", "format": "date"}
        default = default.isoformat() if given else ("" if default is None else default)
    elif typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (str,)
        choices = _choices(item)
        schema = {"type": "array", "items": {"type": "string", **({"enum": choices} if choices else {})},
                  "uniqueItems": True}
        if item is not str and not choices:
            return None, default
    elif _choices(annotation) is not None:
        schema = {"type": "string", "enum": _choices(annotation)}
    elif annotation is bool and optional:  # three ways: a dropdown of words the model understands
        words = form_of(field).words
        if not words:
            raise TypeError(f"{name}: an optional flag needs its words for the form (Form(words=...))")
        schema = {"type": "string", "enum": list(words)}
        default = next(w for w, v in words.items() if v == default)
    elif annotation is bool:
        schema = {"type": "boolean"}
    elif annotation is str:
        schema = {"type": "string", **_bounds(field, ("minLength", "maxLength"))}
        default = "" if default is None else default
    elif annotation in (int, float):
        schema = {"type": "integer" if annotation is int else "number", **_bounds(field, NUMBER_BOUNDS)}
        if default is None:
            if not form_of(field).zero_is_none:  # 0 may mean something (0 days): the field starts empty
                return schema, MISSING
            schema.pop("exclusiveMinimum", None)  # an optional limit: 0 means no limit
            schema["minimum"] = 0
            default = 0
    else:
        return None, default
    return schema, default


def form_values(model, values: dict[str, Any]) -> dict[str, Any]:
    """What the form sent, as the model takes it: "" (an empty text or date) is the model's "not given";
    a text area of lines is the list of its non-blank lines."""
    cleaned = {}
    for name, value in values.items():
        field = model.model_fields.get(name)
        if field is not None and value == "" and field.get_default(call_default_factory=True) is None:
            continue
        form = form_of(field) if field is not None else Form()
        if form.words and isinstance(value, str) and value in form.words:
            value = form.words[value]
        if form.lines and isinstance(value, str):
            value = [line.strip() for line in value.splitlines() if line.strip()]
        cleaned[name] = value
    return cleaned


def optional_in_form(model) -> set[str]:
    """The fields a person may leave empty in the form (shown "(Optional)"): dates, lists, text areas of
    lines and numbers that start empty. The 3.9.1 form sends nothing for an emptied field, which a
    required one refuses ("'user_groups' is a required property"); every other field always holds a value."""
    optional = set()
    for name, field in model.model_fields.items():
        schema, default = form_schema(name, field)
        if default is MISSING or form_of(field).lines or (schema or {}).get("format") == "date" \
                or (schema or {}).get("type") == "array":
            optional.add(name)
    return optional


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
    so the runs list reads as a diary; a run with bad parameters is named too. Never raises: a name
    callable that fails leaves the run with Prefect's random name."""

    def name() -> str:
        values = flow_run.parameters or {}
        as_of = values.get("as_of")
        try:
            day = dt.date.fromisoformat(str(as_of)) if as_of else run_date_and_time(None)[0]
        except ValueError:  # a bad date (or time zone) ends the run as Invalid parameters; named still
            day = dt.date.today()
        return f"{job.command}-{day}" + ("" if values.get("dry_run") is False else "-dry-run")

    return name


class _QuietNamedEndings(logging.Filter):
    """Prefect 3.9.1's engine, run by a worker or `serve` (`python -m prefect.engine`), logs an ERROR
    "Engine execution exited with unexpected exception" with a FailedRun/CancelledRun traceback for
    every Failed or Cancelled final state, also one the flow returned on purpose (Invalid parameters,
    Refused, Rejected, Failed with what was committed). The flow has already said why in one line:
    drop that record. An exception the flow did not turn into a state (a bug, a crash) is anything
    else, and is still logged with its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.getMessage().startswith("Engine execution exited with unexpected exception"):
            from prefect.exceptions import CancelledRun, FailedRun

            # The state's own data is what the engine re-raises: the flow's named ending, already said
            # in one line (a failed batch's error is in the report and the state message too).
            return not isinstance(record.exc_info[1], (FailedRun, CancelledRun, InvalidInput, JobStopped))
        return True


def quiet_named_endings() -> None:
    flow_runs = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, _QuietNamedEndings) for f in flow_runs.filters):
        flow_runs.addFilter(_QuietNamedEndings())


def _json_native(value: Any) -> bool:
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) is list:
        return all(_json_native(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_native(v) for k, v in value.items())
    return False


def _serialize_parameters(self: Flow, parameters: dict[str, Any]) -> dict[str, Any]:
    """Prefect 3.9.1's Flow.serialize_parameters imports FastAPI for its jsonable_encoder before every
    flow run (0.1-0.3 s of each command, BENCHMARKS.md change 24), which gives JSON values back as
    they are; the command line and the UI form send only those."""
    if all(_json_native(v) for v in parameters.values()):
        return dict(parameters)
    return Flow.serialize_parameters(self, parameters)


def job_flow(job: JobDefinition) -> Flow:
    """The Prefect flow of a job."""
    titles = field_titles(job.parameters)

    def run(**values: Any) -> State:
        # Arguments the caller left out arrive as the signature's FieldInfo defaults (or, for a field the
        # form starts empty, its MISSING): the model fills them.
        given = {k: v for k, v in values.items() if not isinstance(v, FieldInfo) and v is not MISSING}
        try:
            # By their titles, unless the command line that called the flow named them by its flags.
            with naming(names_in_use() or titles):
                result = run_job(job, parse(job.parameters, form_values(job.parameters, given)))
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
    job_run_flow.serialize_parameters = types.MethodType(_serialize_parameters, job_run_flow)
    quiet_named_endings()  # the engine imports the flow's module before it runs the flow
    heartbeats.install()
    return job_run_flow
