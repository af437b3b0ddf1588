"""A pairs file for Merge Users: CSV with a header, columns from_user,to_user and optionally
copy_as_internal. Any problem names the file, the line and the value."""
from __future__ import annotations

import csv
from pathlib import Path

from tasks.engine.parameters import named
from tasks.errors import InvalidInput
from tasks.merge.parameters import MergePair

CSV_COLUMNS = ("from_user", "to_user", "copy_as_internal")
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}


def read_pairs_csv(path: str) -> list[MergePair]:
    """Pairs from a CSV file; any problem names the file, the line and the value."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"{named('pairs_file')}: no such file {path!r}")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_COLUMNS[:2] if c not in header]
            unknown = [c for c in header if c not in CSV_COLUMNS]
            if missing or unknown:
                problem = "; ".join(filter(None, [f"missing column(s) {', '.join(missing)}" if missing else "",
                                                  f"unknown column(s) {', '.join(unknown)}" if unknown else ""]))
                raise InvalidInput(f"pairs file {path!r}: {problem}; expected columns "
                                   "from_user,to_user and optionally copy_as_internal")
            reader.fieldnames = header
            pairs = [_csv_pair(path, reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values())]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"pairs file {path!r} is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"pairs file {path!r}: {exc}") from None
    if not pairs:
        raise InvalidInput(f"pairs file {path!r} holds no pairs")
    return pairs


def _csv_pair(path: str, line: int, row: dict[str, str | None]) -> MergePair:
    where = f"pairs file {path!r}, line {line}"
    if None in row:
        raise InvalidInput(f"{where}: more values than columns")
    values = {k: (v or "").strip() for k, v in row.items()}
    for column in CSV_COLUMNS[:2]:
        if not values.get(column):
            raise InvalidInput(f"{where}: {column} is empty")
    flag = values.get("copy_as_internal", "").lower()
    if flag and flag not in TRUE_WORDS | FALSE_WORDS:
        raise InvalidInput(f"{where}: copy_as_internal must be true or false (or empty), "
                           f"got {values['copy_as_internal']!r}")
    return MergePair(from_user=values["from_user"], to_user=values["to_user"],
                     copy_as_internal=None if not flag else flag in TRUE_WORDS)
