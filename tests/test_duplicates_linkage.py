"""The scorer takes the library whole or as the selection's chunks (lists joined by the separator, dates
as ISO text, as a database returns them) and finds the same pairs either way."""
from __future__ import annotations

import pandas as pd

from tasks.db.statements import LIST_SEPARATOR
from tasks.devtools.noisy.library import generate_library
from tasks.duplicates.linkage import find_duplicate_pairs

LISTS = ["emails", "phones", "postal_codes", "identifiers"]


def as_selected(lib: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    chunk = lib.copy()
    for column in LISTS:
        chunk[column] = [LIST_SEPARATOR.join(v) if len(v) else None for v in chunk[column]]
    chunk["birth_date"] = chunk["birth_date"].dt.strftime("%Y-%m-%d").astype(object).where(
        chunk["birth_date"].notna(), None)
    return [chunk.iloc[start:start + rows] for start in range(0, len(chunk), rows)]


def test_chunks_of_joined_lists_score_as_the_whole_frame():
    lib = generate_library(2000, seed=4)
    whole = find_duplicate_pairs(lib)
    chunked = find_duplicate_pairs(iter(as_selected(lib, 700)), list_separator=LIST_SEPARATOR)
    assert chunked.attrs["users"] == whole.attrs["users"] == len(lib)
    assert len(whole) > 20
    key = ["user_id_l", "user_id_r"]
    pd.testing.assert_frame_equal(chunked.sort_values(key).reset_index(drop=True),
                                  whole.sort_values(key).reset_index(drop=True))


def test_fewer_than_two_users_make_no_pair():
    lib = generate_library(50, seed=4)
    none = find_duplicate_pairs(iter([lib.iloc[:1], lib.iloc[:0]]))
    assert none.empty and none.attrs["users"] == 1
