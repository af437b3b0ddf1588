"""The preview, gathered unit by unit as the decided rows go by: the job's counts, the units left out by
reason, and the first rows of the report's samples. What it holds does not grow with the library, so a
selection read in chunks (selection.StreamedSelection) never has to be held whole to be previewed; the
whole-frame preview (make_preview) is the same tally over one frame."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from tasks.engine.definition import JobDefinition, Preview
from tasks.reasons import ELIGIBLE

# Units each sample of the report (and the approval form) names; the rest are counted.
SAMPLE_ROWS = 10


def add_counts(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Sum job counts; nested dicts (e.g. merge's `moved`) are summed key by key."""
    out = dict(total)
    for key, value in more.items():
        if isinstance(value, dict):
            out[key] = add_counts(out.get(key, {}), value)
        else:
            out[key] = out.get(key, 0) + value
    return out


class Tally:
    """Decided rows in, a Preview out. `add` takes the rows of whole units (a unit's rows never split
    between two calls), in selection order, so the samples are the first units of the selection and
    every count is a sum over disjoint units, as one call over the whole selection would make it."""

    def __init__(self, job: JobDefinition):
        self.job = job
        self.counts: dict[str, Any] = {}
        self.eligible_units = 0
        self.skipped: Counter[str] = Counter()
        self._affected: list[pd.DataFrame] = []
        self._left_out: list[pd.DataFrame] = []
        self._empty: pd.DataFrame | None = None

    def add(self, decided: pd.DataFrame) -> None:
        job = self.job
        if self._empty is None:
            self._empty = decided.iloc[0:0]
        if decided.empty:
            return
        eligible = decided[decided["outcome"] == ELIGIBLE]
        self.counts = add_counts(self.counts, job.count(eligible))
        units = decided.drop_duplicates(job.key)
        chosen = units["outcome"] == ELIGIBLE
        self.eligible_units += int(chosen.sum())
        left_out = units[~chosen]
        self.skipped.update({str(k): int(v) for k, v in left_out["outcome"].value_counts().items()})
        _keep_first(self._affected, units[chosen][[job.label, *job.sample_columns]])
        _keep_first(self._left_out, left_out[[job.label, "outcome"]].rename(columns={"outcome": "reason"}))

    def preview(self, decisions: pd.DataFrame | None = None) -> Preview:
        """The preview; `decisions` are kept in it when the batches will be made from them."""
        job = self.job
        empty = self._empty if self._empty is not None else pd.DataFrame({job.key: [], "outcome": []})
        if not self.counts:
            self.counts = job.count(empty[empty["outcome"] == ELIGIBLE])
        return Preview(
            decisions=decisions if decisions is not None else empty,
            eligible_units=self.eligible_units,
            counts=self.counts,
            skipped=dict(self.skipped.most_common()),   # the most frequent reason first, as value_counts
            affected=_joined(self._affected, empty, [job.label, *job.sample_columns]),
            left_out=_joined(self._left_out, empty.rename(columns={"outcome": "reason"}), [job.label, "reason"]),
        )


def _keep_first(kept: list[pd.DataFrame], more: pd.DataFrame) -> None:
    room = SAMPLE_ROWS - sum(len(f) for f in kept)
    if room > 0 and len(more):
        kept.append(more.head(room))


def _joined(frames: list[pd.DataFrame], empty: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if not frames:
        return empty.reindex(columns=columns)
    return pd.concat(frames, ignore_index=True)


def make_preview(job: JobDefinition, decisions: pd.DataFrame) -> Preview:
    """The preview of a whole decided selection, which it keeps for the batches."""
    tally = Tally(job)
    tally.add(decisions)
    return tally.preview(decisions)
