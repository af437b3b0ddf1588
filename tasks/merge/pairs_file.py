"""A pairs file for Merge Users: CSV with a header, columns from_user,to_user and optionally
copy_as_internal. The columns `find-duplicates --export` adds (probability, merge_round, evidence, ...)
are accepted and ignored, apart from merge_round, which `--round K` selects by. Any problem names the
file, the line and the value."""
from __future__ import annotations

import csv
from pathlib import Path

from tasks.engine.parameters import named
from tasks.errors import InvalidInput
from tasks.library.review_queue import EXPORT_COLUMNS
from tasks.merge.parameters import MergePair, copy_as_internal_word

CSV_COLUMNS = ("from_user", "to_user", "copy_as_internal")


ROUND_COLUMN = "merge_round"


def read_pairs_csv(path: str, merge_round: int | None = None) -> list[MergePair]:
    """Pairs from a CSV file (only those of round `merge_round`, when given); any problem names the
    file, the line and the value."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"{named('pairs_file')}: no such file {path!r}")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_COLUMNS[:2] if c not in header]
            unknown = [c for c in header if c not in CSV_COLUMNS and c not in EXPORT_COLUMNS]
            if missing or unknown:
                problem = "; ".join(filter(None, [f"missing column(s) {', '.join(missing)}" if missing else "",
                                                  f"unknown column(s) {', '.join(unknown)}" if unknown else ""]))
                raise InvalidInput(f"pairs file {path!r}: {problem}; expected columns "
                                   "from_user,to_user and optionally copy_as_internal (and the columns "
                                   "find-duplicates --export writes)")
            if merge_round is not None and ROUND_COLUMN not in header:
                raise InvalidInput(f"pairs file {path!r} has no column {ROUND_COLUMN}: "
                                   f"{named('merge_round')} needs the file find-duplicates --export writes")
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values())]
            pairs = [_csv_pair(path, line, row) for line, row in rows
                     if merge_round is None or _round(path, line, row) == merge_round]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"pairs file {path!r} is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"pairs file {path!r}: {exc}") from None
    if not pairs:
        raise InvalidInput(f"pairs file {path!r} holds no pairs"
                           + (f" of round {merge_round}" if merge_round is not None else ""))
    return pairs


def _csv_pair(path: str, line: int, row: dict[str, str | None]) -> MergePair:
    where = f"pairs file {path!r}, line {line}"
    if None in row:
        raise InvalidInput(f"{where}: more values than columns")
    values = {k: (v or "").strip() for k, v in row.items()}
    for column in CSV_COLUMNS[:2]:
        if not values.get(column):
            raise InvalidInput(f"{where}: {column} is empty")
    try:
        copy = copy_as_internal_word(values.get("copy_as_internal", ""))
    except ValueError as exc:
        raise InvalidInput(f"{where}: copy_as_internal {exc}, got {values['copy_as_internal']!r}") from None
    return MergePair(from_user=values["from_user"], to_user=values["to_user"], copy_as_internal=copy)


def _round(path: str, line: int, row: dict[str, str | None]) -> int:
    value = (row.get(ROUND_COLUMN) or "").strip()
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"pairs file {path!r}, line {line}: {ROUND_COLUMN} must be a whole number, "
                           f"got {value!r}") from None
