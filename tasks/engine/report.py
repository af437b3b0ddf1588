"""The run report: one markdown text, stored with the job run, published as a Prefect artifact under a
stable key (so the artifact's history is the job's history) and printed by the command line."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext

from tasks.db.engine import mask_url
from tasks.engine.parameters import form_of, form_order, title_of
from tasks.library.money import money
from tasks.engine.definition import JobDefinition, JobRun, Preview
from tasks.engine.outcome import Kind, RunOutcome, summary_of
from tasks.engine.tally import SAMPLE_ROWS
from tasks.reasons import ELIGIBLE

AFFECTED = "Sample of who is affected"
LEFT_OUT = "Sample of who is skipped, and why"
# Keys of the summary that describe the run rather than count what it did.
NOT_COUNTS = frozenset({"job", "run_id", "dry_run", "as_of", "parameters", "skipped"})


# The contract's reason codes in the librarian's words ("290 users skipped (above the fine threshold)").
REASON_WORDS = {
    "OWES_ABOVE_THRESHOLD": "owes more than the limit",
    "ACTIVE_LOANS": "has active loans",
    "ACTIVE_REQUESTS": "has active requests",
    "HAS_CREDIT": "holds a credit (the library owes them)",
    "PROTECTED": "protected",
    "ABOVE_FINE_THRESHOLD": "above the fine threshold",
    "HAS_OVERDUE_LOANS": "has overdue loans",
    "CHANGED_SINCE_SELECTION": "changed since the selection",
    "FROM_NOT_PATRON_ONLY": "From user has roles other than Patron",
    "SAME_USER": "From and To are the same user",
    "USER_NOT_FOUND": "user not found",
    "USER_IN_SEVERAL_PAIRS": "user in several pairs",
    "COPY_AS_INTERNAL_REQUIRED": "needs Copy as internal set",
}


# The reasons whose verb agrees with how many it says it of ("1 has active loans", "129 have active loans").
PLURAL_REASON_WORDS = {
    "OWES_ABOVE_THRESHOLD": "owe more than the limit",
    "ACTIVE_LOANS": "have active loans",
    "ACTIVE_REQUESTS": "have active requests",
    "HAS_CREDIT": "hold a credit (the library owes them)",
    "HAS_OVERDUE_LOANS": "have overdue loans",
    "FROM_NOT_PATRON_ONLY": "From users have roles other than Patron",
    "USER_NOT_FOUND": "users not found",
    "USER_IN_SEVERAL_PAIRS": "users in several pairs",
}


def reason_in_words(code: str, n: int = 1) -> str:
    """The reason as said of one unit, or of `n` of them."""
    if n != 1 and code in PLURAL_REASON_WORDS:
        return PLURAL_REASON_WORDS[code]
    return REASON_WORDS.get(code, code.replace("_", " ").lower())


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """1 fine, 1,056 fines."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def skipped_in_words(job: JobDefinition, skipped: dict[str, int]) -> str:
    """ "290 users skipped (above the fine threshold)", "132 users skipped (129 have active loans, 3 protected)",
    or "" when none was."""
    if not skipped:
        return ""
    parts = sorted(skipped.items(), key=lambda kv: -kv[1])
    total = sum(skipped.values())
    if len(parts) == 1:
        return f"{job.unit.count(total)} skipped ({reason_in_words(parts[0][0], total)})"
    reasons = ", ".join(f"{n:,} {reason_in_words(code, n)}" for code, n in parts)
    return f"{job.unit.count(total)} skipped ({reasons})"


def headline_of(job: JobDefinition, summary: dict[str, Any]) -> str:
    """One sentence saying what the run does (or did, or would do): the job's own sentence, then the skips."""
    said = job.headline(summary) if job.headline else job.title
    skipped = skipped_in_words(job, summary.get("skipped") or {})
    return f"{said}; {skipped}." if skipped else f"{said}."


# The summary's count names in words (the JSON summary keeps the contract's keys).
COUNT_WORDS = {
    "users_considered": "Users considered", "users_eligible": "Users eligible", "users_waived": "Users waived",
    "fines_waived": "Fines waived", "amount_waived": "Amount waived", "eligible": "Users eligible",
    "purged": "Users purged", "pairs": "Pairs", "merged": "Pairs merged", "failed": "Pairs failed, by reason",
    "moved": "Moved to the To users",
}


def count_in_words(key: str) -> str:
    return COUNT_WORDS.get(key, key.replace("_", " ").capitalize())


def is_amount(key: str) -> bool:
    return key.startswith("amount") or key.endswith("_amount")


def value_in_words(value: Any, *, amount: bool = False, empty: str = "all") -> str:
    """A value as people write it: yes/no, "all" for an empty list of limits, amounts with the currency."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "not set"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else empty
    if amount:
        return money(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def parameters_in_words(job: JobDefinition, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's parameters in the form's order, by their titles."""
    model = job.parameters
    rows = []
    for name in [*form_order(model), *sorted(set(parameters) - set(model.model_fields))]:
        if name not in parameters:
            continue
        field = model.model_fields.get(name)
        value = parameters[name]
        annotation = str(field.annotation) if field is not None else ""
        if value is None and field is not None and form_of(field).zero_is_none:  # max_users, max_share
            shown = "no limit"  # not a None loan_days: that kind is left alone ("not set")
        else:
            shown = value_in_words(value, amount="Decimal" in annotation)
        rows.append((title_of(name, field) if field is not None else name, shown))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _sample(heading: str, frame: pd.DataFrame, total: int) -> list[str]:
    """The first SAMPLE_ROWS units of `total` (the preview keeps no more of them)."""
    parts = ["", f"## {heading}"]
    if frame.empty:
        return parts + ["_none_"]
    parts.append(table([tuple(r) for r in frame.head(SAMPLE_ROWS).itertuples(index=False)], tuple(frame.columns)))
    if total > SAMPLE_ROWS:
        parts.append(f"\n_… and {total - SAMPLE_ROWS:,} more_")
    return parts


def samples(outcome_kind: Kind | None, run: JobRun, preview: Preview | None) -> dict[str, tuple[pd.DataFrame, int]]:
    """Who the report names, and how many units each sample is of. A real run's report is kept for
    years: it names nobody it changed; a run that stopped changed nobody, so it shows no "affected"
    sample beside zero counts."""
    if preview is None:
        return {}
    shown = {}
    if outcome_kind in (None, Kind.DRY_RUN):
        shown[AFFECTED] = (preview.affected, preview.eligible_units)
    if outcome_kind not in (Kind.INVALID,):
        shown[LEFT_OUT] = (preview.left_out, sum(preview.skipped.values()))
    return shown


def render(job: JobDefinition, run: JobRun, *, status: str, headline: str | None, summary: dict[str, Any],
           work_s: float, units_done: int, shown: dict[str, tuple[pd.DataFrame, int]], notes: list[str] = (),
           sections: list[str] = (), approval: str | None = None) -> str:
    mode = "dry run (nothing was changed)" if summary["dry_run"] else "real run"
    rate = units_done / work_s if work_s > 0 else 0.0
    counts = {k: v for k, v in summary.items() if k not in NOT_COUNTS}
    parts = [f"# {job.title}: {mode}", ""]
    if headline:
        parts += [f"**{headline}**", ""]
    parts += [f"- **Status:** {status}"]
    if approval:
        parts += [f"- **Approval:** {approval}"]
    parts += [
        f"- **Run date (as of):** {summary['as_of']}",
        f"- **Run id:** `{summary['run_id']}`",
        f"- **Database:** `{mask_url(run.database_url)}`",
        f"- **Duration of the work:** {work_s:.2f} s; **throughput:** {rate:,.0f} {job.unit.plural}/s",
        "",
        "## Parameters",
        table(parameters_in_words(job, summary["parameters"]), ("parameter", "value")),
        "",
        "## Counts" + (" (what a real run would do)" if summary["dry_run"] else ""),
        table([(count_in_words(k), value_in_words(v, amount=is_amount(k))) for k, v in counts.items()
               if not isinstance(v, dict)], ("count", "value")),
    ]
    for key, value in counts.items():
        if isinstance(value, dict):
            rows = [(reason_in_words(k) if key == "failed" else k, value_in_words(v, amount=is_amount(key)))
                    for k, v in sorted(value.items())]
            parts += ["", f"### {count_in_words(key)}", table(rows, ("what", "value")) if value else "_none_"]
    skipped = summary["skipped"]
    parts += ["", "## Skipped by reason",
              table([(reason_in_words(code), code, f"{n:,}") for code, n in sorted(skipped.items())],
                    ("reason", "code", "count")) if skipped else "_none_"]
    for heading, (frame, total) in shown.items():
        parts += _sample(heading, frame, total)
    for section in sections:
        parts += ["", section]
    if notes:
        parts += ["", "## Notes", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def outcome_report(job: JobDefinition, run: JobRun, outcome: RunOutcome, preview: Preview | None,
                   elapsed_s: float) -> str:
    """The final report of a run, derived from its outcome."""
    kind = outcome.kind
    summary = summary_of(job, run, outcome.counts, outcome.skipped)
    shown = samples(kind, run, preview)
    if outcome.applied is not None and outcome.applied.changed:
        labels = list(outcome.applied.changed.values())
        shown["Changed since selection (left alone)"] = (pd.DataFrame({job.label: labels}), len(labels))
    sections = []
    if job.report_sections and preview is not None and kind in (Kind.DRY_RUN, Kind.COMPLETED,
                                                                 Kind.COMPLETED_WITH_FAILURES):
        done = preview.decisions[preview.decisions["outcome"] == ELIGIBLE].drop_duplicates(job.key)
        if outcome.applied is not None and outcome.applied.changed:
            done = done[~done[job.key].isin(list(outcome.applied.changed))]
        sections = job.report_sections(done)
    if outcome.error:
        sections.append(f"## Error\n{outcome.error}")
    notes = list(outcome.notes)
    approval = outcome.approval.describe() if outcome.approval is not None else None
    if outcome.reason:
        headline = f"{kind.state_name}: {outcome.reason}"
    elif kind is Kind.DRY_RUN:
        said = headline_of(job, summary)
        headline = f"Dry run: a real run would {said[0].lower()}{said[1:]}"
    else:
        headline = None
    return render(job, run, status=kind.status, headline=headline, summary=summary,
                  work_s=max(elapsed_s - outcome.waited_s, 0.0), units_done=outcome.units_done, shown=shown,
                  notes=notes, sections=sections, approval=approval)


def publish_report(job_name: str, markdown: str, description: str) -> None:
    """The report as a Prefect artifact with the key `<job>-report` (its history lives under that key)."""
    if FlowRunContext.get() is None:
        return
    create_markdown_artifact(markdown=markdown, key=f"{job_name}-report", description=description)
