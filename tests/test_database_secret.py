"""Database credentials from a Prefect Secret block: the job finds its database through the block,
and the password shows up nowhere a person or a log could read it."""
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests.builders import add_user


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_run_reads_its_database_url_from_a_secret_block_and_never_shows_the_password(
        engine, db_url, cli, monkeypatch, caplog):
    from prefect.blocks.system import Secret

    from tasks.db.schema import job_runs

    add_user(engine, "leaving", purge_date=dt.date(2026, 12, 1))
    password = f"pw-{uuid.uuid4().hex}"  # the test server trusts local users, so any password connects
    secret_url = make_url(db_url).set(password=password).render_as_string(hide_password=False)
    block = f"library-db-{uuid.uuid4().hex[:8]}"
    Secret(value=secret_url).save(block)
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATABASE_URL_SECRET_BLOCK", block)

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-share", "1")
    assert code == 0, err
    code, json_out, err = cli("purge", "--as-of", "2026-12-20", "--max-share", "1", "--json")
    assert code == 0 and json.loads(json_out)["eligible"] == 1  # the user in the block's database
    _, history, _ = cli("history", "--json")
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(job_runs.select()) for v in row)
    for seen in (out, err, json_out, history, stored, caplog.text):
        assert password not in seen
    assert "***" in out  # the report names the database, masked

    monkeypatch.setenv("DATABASE_URL_SECRET_BLOCK", "no-such-block")
    code, _, err = cli("purge", "--as-of", "2026-12-20")
    assert code == 2 and "no-such-block" in err
