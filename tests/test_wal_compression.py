"""The jobs' PostgreSQL sessions compress the whole pages they write to the WAL (tasks/db/engine.py):
where the server leaves `wal_compression` off and the role may set it, for their own sessions only."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tasks.db.engine import dispose_engines, get_engine

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _setting(engine) -> tuple[str, str]:
    """(this session's wal_compression, the value the session started with: the server's or role's)."""
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT setting, reset_val FROM pg_settings WHERE name = 'wal_compression'")).one())


def _plain(url: str):
    # An engine made without tasks.db.engine: a session as any other client opens it.
    return create_engine(url, poolclass=NullPool)


def test_a_job_session_compresses_full_page_images_and_leaves_the_server_alone(db_url):
    server_default = _setting(_plain(db_url))[0]
    if server_default != "off":
        pytest.fail(f"this test needs a server with wal_compression off (the default), found {server_default!r}")
    session, started_with = _setting(get_engine(db_url))
    assert session in ("lz4", "pglz")   # lz4 where the server was built with it
    assert started_with == "off"
    # Other sessions, and the server's configuration, are as they were.
    assert _setting(_plain(db_url)) == ("off", "off")


def test_a_server_that_compresses_already_keeps_its_own_choice(db_url):
    url = make_url(db_url).update_query_dict({"options": "-c wal_compression=pglz"}).render_as_string(hide_password=False)
    assert _setting(get_engine(url))[0] == "pglz"


def test_a_role_that_may_not_set_it_works_as_before(db_url):
    role = f"lumj_plain_{uuid.uuid4().hex[:8]}"
    admin = get_engine(db_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT ON users TO {role}"))
    url = make_url(db_url).set(username=role, password=None).render_as_string(hide_password=False)
    try:
        engine = get_engine(url)
        assert _setting(engine)[0] == "off"
        with engine.connect() as conn:   # the connection is usable: no failed SET left its transaction aborted
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
    finally:
        dispose_engines()
        with get_engine(db_url).begin() as conn:
            conn.execute(text(f"REVOKE ALL ON users FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
