"""Reviewing the queue of Find Duplicate Users: list it, accept or reject pairs, and the CSV round trip
for a review in a spreadsheet (`duplicates list --csv FILE`, fill in `decision`, `duplicates review FILE`)."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from tasks.errors import InvalidInput
from tasks.library.review_queue import ACCEPTED, PROPOSED, REJECTED, REVIEW_COLUMNS

DECISIONS = {"accept": ACCEPTED, "accepted": ACCEPTED, "yes": ACCEPTED, "y": ACCEPTED,
             "reject": REJECTED, "rejected": REJECTED, "no": REJECTED, "n": REJECTED,
             "proposed": PROPOSED}


def review_frame(queue: pd.DataFrame) -> pd.DataFrame:
    """The queue as a person reviews it: REVIEW_COLUMNS, `decision` empty."""
    frame = queue.rename(columns={"from_primary_id": "from_user", "to_primary_id": "to_user"}).copy()
    frame["decision"] = ""
    frame["probability"] = frame["probability"].map(lambda p: f"{p:.4f}")
    return frame[list(REVIEW_COLUMNS)]


def write_review_csv(path: str, queue: pd.DataFrame) -> int:
    frame = review_frame(queue)
    frame.to_csv(Path(path).expanduser(), index=False)
    return len(frame)


def read_review_csv(path: str) -> dict[str, list[int]]:
    """status -> pair ids from a filled-in review CSV (rows with an empty decision are left as they are)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"no such file {path!r}")
    out: dict[str, list[int]] = {ACCEPTED: [], REJECTED: [], PROPOSED: []}
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "pair_id" not in header or "decision" not in header:
            raise InvalidInput(f"review file {path!r} needs the columns pair_id and decision "
                               "(as `duplicates list --csv` writes them)")
        reader.fieldnames = header
        for row in reader:
            decision = (row.get("decision") or "").strip().lower()
            if not decision:
                continue
            if decision not in DECISIONS:
                raise InvalidInput(f"review file {path!r}, line {reader.line_num}: decision must be accept or "
                                   f"reject (or empty), got {row.get('decision')!r}")
            try:
                pair_id = int((row.get("pair_id") or "").strip())
            except ValueError:
                raise InvalidInput(f"review file {path!r}, line {reader.line_num}: pair_id must be a whole "
                                   f"number, got {row.get('pair_id')!r}") from None
            out[DECISIONS[decision]].append(pair_id)
    return out
