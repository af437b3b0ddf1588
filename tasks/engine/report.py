"""The run report: one markdown text, stored with the job run, published as a Prefect artifact
under a stable key (so the Artifacts page keeps its history) and printed by the CLI."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from tasks.db.engine import mask_url

SAMPLE_ROWS = 10


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_report(*, title: str, summary: dict[str, Any], status: str, duration_s: float, units_done: int,
                  unit_name: str, database_url: str, samples: dict[str, pd.DataFrame],
                  notes: list[str] | None = None, sections: list[str] | None = None) -> str:
    mode = "dry run (nothing was changed)" if summary["dry_run"] else "real run"
    rate = units_done / duration_s if duration_s > 0 else 0.0
    counts = {k: v for k, v in summary.items()
              if k not in {"job", "run_id", "dry_run", "as_of", "parameters", "skipped"}}
    parts = [
        f"# {title}: {mode}",
        "",
        f"- **Status:** {status}",
        f"- **Run date (as of):** {summary['as_of']}",
        f"- **Run id:** `{summary['run_id']}`",
        f"- **Database:** `{mask_url(database_url)}`",
        f"- **Duration:** {duration_s:.2f} s; **throughput:** {rate:,.0f} {unit_name}/s",
        "",
        "## Parameters",
        table(sorted(summary["parameters"].items()), ("parameter", "value")),
        "",
        "## Counts" + (" (what a real run would do)" if summary["dry_run"] else ""),
        table([(k, v) for k, v in counts.items() if not isinstance(v, dict)], ("count", "value")),
    ]
    for key, value in counts.items():
        if isinstance(value, dict):
            parts += ["", f"### {key.replace('_', ' ').capitalize()}",
                      table(sorted(value.items()), ("what", "value")) if value else "_none_"]
    parts += ["", "## Skipped by reason",
              table(sorted(summary["skipped"].items()), ("reason", "count")) if summary["skipped"] else "_none_"]
    for heading, frame in samples.items():
        parts += ["", f"## {heading}"]
        if frame.empty:
            parts.append("_none_")
        else:
            parts.append(table([tuple(r) for r in frame.head(SAMPLE_ROWS).itertuples(index=False)],
                               tuple(frame.columns)))
            if len(frame) > SAMPLE_ROWS:
                parts.append(f"\n_… and {len(frame) - SAMPLE_ROWS:,} more_")
    for section in sections or []:
        parts += ["", section]
    if notes:
        parts += ["", "## Notes", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def publish_report(job_name: str, markdown: str, description: str) -> None:
    """The report as a Prefect artifact with the key `<job>-report` (its history lives under that key)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    create_markdown_artifact(markdown=markdown, key=f"{job_name}-report", description=description)
