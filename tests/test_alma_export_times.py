"""Dates and times come back from `export` in the format's one form on both databases (PostgreSQL's are
read as text the server makes, tasks/alma/export._PG_TEXT): microseconds kept, whole seconds without
them, a time given with an offset in UTC, a date with Alma's trailing Z."""
from __future__ import annotations

from tasks.alma.load import load_files

from test_alma_format import export_all
from test_alma_load_chunks import write_lines


def test_times_and_dates_come_back_in_the_formats_form(engine, tmp_path):
    record = {
        "primary_id": "t1", "birth_date": "1970-01-01Z", "expiry_date": "2999-12-31",
        "item_loan": [{"loan_id": "LT1", "loan_status": "COMPLETE", "loan_date": "2024-05-12T18:05:23.123456Z",
                       "due_date": "2024-06-09T23:59:00Z", "return_date": "2024-05-15T20:35:17+02:00"}],
        "user_note": [{"note_text": "x", "created_date": "2000-02-29T00:00:00.000001Z"}],
    }
    load_files(engine, [str(write_lines(tmp_path, [record]))])
    (user,) = export_all(engine)
    loan = user["item_loan"][0]
    assert (loan["loan_date"], loan["due_date"], loan["return_date"]) == (
        "2024-05-12T18:05:23.123456Z", "2024-06-09T23:59:00Z", "2024-05-15T18:35:17Z")
    assert user["user_note"][0]["created_date"] == "2000-02-29T00:00:00.000001Z"
    assert (user["birth_date"], user["expiry_date"]) == ("1970-01-01Z", "2999-12-31Z")
