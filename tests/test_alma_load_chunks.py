"""Load of a file of many chunks, as a large library's file is loaded: checked in a second process
beside the one that writes (or in one process), read and written a chunk at a time, with memory flat in
the file's size. Chunks are made small here, so a few dozen users are many chunks."""
from __future__ import annotations

import json
import tracemalloc

import pytest

from tasks.alma import load
from tasks.alma.load import load_files
from tasks.errors import InvalidInput

from test_alma_format import assert_comes_back, count_users, export_all

CHUNK = 4
FIRST_CHUNK = 2  # smaller, as a real load's first chunk is (load.FIRST_CHUNK)


@pytest.fixture(params=["one process", "two processes"])
def checks(request, monkeypatch):
    monkeypatch.setattr(load, "CHUNK", CHUNK)
    monkeypatch.setattr(load, "FIRST_CHUNK", FIRST_CHUNK)
    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 0 if request.param == "two processes" else 10**12)
    return request.param


def user(n: int) -> dict:
    pid = f"c{n:03d}"
    return {
        "primary_id": pid,
        "last_name": f"Name {n}",
        # A group the code tables lack, met in chunks of both processes: added once.
        "user_group": {"value": "VISITOR" if n % 2 else "ALUMNUS", "desc": "Visitor" if n % 2 else None},
        "contact_info": {"email": [{"email_address": f"{pid}@example.edu", "segment_type": "External"}]},
        "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": f"B-{pid}"}],
        "item_loan": [{"loan_id": f"L-{pid}", "loan_status": "ACTIVE", "due_date": "2030-01-01T00:00:00Z",
                       "call_number": f"QA{n}"}],  # outside the format: kept
        "user_role": [{"role_type": {"value": "200"}, "scope": {"value": "MAIN"}, "status": {"value": "ACTIVE"}}],
        "fee": [{"id": f"F-{pid}", "type": {"value": "OVERDUEFINE"}, "status": {"value": "ACTIVE"},
                 "balance": "4.00", "original_amount": "5.00",
                 "transaction": [{"type": {"value": "PAYMENT"}, "amount": "1.00"}]}] if n % 3 == 0 else [],
    }


def write_lines(tmp_path, records, name: str = "users.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_file_of_many_chunks_loads_and_round_trips(engine, tmp_path, checks):
    records = [user(n) for n in range(1, 42)]  # 2 + 39 in 4s, 11 chunks: on SQLite the writing process checks some

    counts = load_files(engine, [str(write_lines(tmp_path, records))])

    assert counts["users"] == 41 and counts["loans"] == 41 and counts["fees"] == 13 and counts["roles"] == 41
    assert counts["codes_added"] == 2  # VISITOR and ALUMNUS, each once
    exported = export_all(engine)
    assert [u["primary_id"] for u in exported] == [r["primary_id"] for r in records]
    for before, after in zip(records, exported):
        assert_comes_back(before, after, before["primary_id"])
    assert exported[0]["user_group"] == {"value": "VISITOR", "desc": "Visitor"}


def test_keys_met_in_an_earlier_chunk_are_refused_naming_where_they_were_first(engine, tmp_path, checks):
    records = [user(n) for n in range(1, 30)]
    records[12]["primary_id"] = "c002"                                    # line 13, chunk 3
    records[17]["user_identifier"][0]["value"] = "B-c003"                 # line 18, chunk 4
    records[22]["item_loan"][0]["loan_id"] = "L-c001"                     # line 23, chunk 5
    records[26]["fee"] = [dict(user(3)["fee"][0])]                        # line 27, chunk 6

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    message = str(refused.value)
    assert "line 13 (primary_id 'c002'): primary_id: 'c002' appears twice in the file (also line 2)" in message
    assert ("line 18 (primary_id 'c018'): user_identifier[0].value: id_type 'BARCODE' value 'B-c003' appears "
            "twice in the file (also line 3 (primary_id 'c003') user_identifier[0].value)") in message
    assert ("line 23 (primary_id 'c023'): item_loan[0].loan_id: 'L-c001' appears twice in the file "
            "(also line 1 (primary_id 'c001') item_loan[0].loan_id)") in message
    assert ("line 27 (primary_id 'c027'): fee[0].id: 'F-c003' appears twice in the file "
            "(also line 3 (primary_id 'c003') fee[0].id)") in message
    assert message.endswith("nothing was loaded") and count_users(engine) == 0


def test_after_a_problem_the_rest_of_the_file_is_still_checked_for_keys_met_twice(engine, tmp_path, checks):
    # Nothing is written from the first chunk with a problem on; keys met twice after it are still found.
    records = [user(n) for n in range(1, 20)]
    records[1]["birth_date"] = "yesterday"                                # chunk 0
    records[9]["item_loan"][0]["loan_id"] = "L-c006"                      # chunk 2, first met in chunk 1
    records[14]["item_loan"][0]["loan_id"] = "L-c009"                     # chunk 4, first met in chunk 2

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    lines = str(refused.value).splitlines()
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == [
        "line 2 (primary_id 'c002')", "line 10 (primary_id 'c010')", "line 15 (primary_id 'c015')"]
    assert lines[1].endswith("item_loan[0].loan_id: 'L-c006' appears twice in the file "
                             "(also line 6 (primary_id 'c006') item_loan[0].loan_id)")
    assert lines[2].endswith("item_loan[0].loan_id: 'L-c009' appears twice in the file "
                             "(also line 9 (primary_id 'c009') item_loan[0].loan_id)")
    assert count_users(engine) == 0


class _NeverWanted:
    """A flag nobody can set: the checking process sends every chunk without its keys, as it does
    with those it sent before it knew of the file's first problem."""

    @property
    def value(self) -> int:
        return 0

    @value.setter
    def value(self, _: int) -> None:
        pass


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_keys_the_checking_process_left_out_are_found_again_for_the_message(engine, tmp_path, monkeypatch, fmt):
    from tasks.alma.xml import USERS_HEAD, USERS_TAIL, user_lines

    monkeypatch.setattr(load, "CHUNK", CHUNK)
    monkeypatch.setattr(load, "FIRST_CHUNK", FIRST_CHUNK)
    records = [user(n) for n in range(1, 20)]
    records[1]["birth_date"] = "yesterday"
    records[9]["item_loan"][0]["loan_id"] = "L-c006"
    records[14]["item_loan"][0]["loan_id"] = "L-c009"
    if fmt == "json":
        path = write_lines(tmp_path, records)
    else:
        path = tmp_path / "users.xml"
        path.write_bytes(USERS_HEAD + user_lines(records) + USERS_TAIL)

    def refusal() -> str:
        with pytest.raises(InvalidInput) as refused:
            load_files(engine, [str(path)])
        return str(refused.value)

    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 10**12)
    in_one_process = refusal()
    real_child, real_again = load._check_in_child, load._Loader._keys_again
    found_again: list[int] = []
    monkeypatch.setattr(load, "_check_in_child", lambda *args: real_child(*args[:-1], _NeverWanted()))
    monkeypatch.setattr(load._Loader, "_keys_again",
                        lambda self, number: found_again.append(number) or real_again(self, number))
    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 0)

    assert refusal() == in_one_process
    assert "'L-c009' appears twice in the file" in in_one_process
    if fmt == "xml":  # the checking process checks every chunk of an XML file: each came without keys
        assert found_again == [0, 1, 2, 3, 4, 5]  # 2 records, then 4 at a time
    assert count_users(engine) == 0


@pytest.mark.parametrize("bad_lines", [[7], [19], [7, 23], [23, 27]])
def test_a_line_that_is_not_json_refuses_the_file_naming_the_first(engine, tmp_path, checks, bad_lines):
    # Either process may check a chunk (the writing one takes chunks when it has nothing to write):
    # the first broken line of the file is the one named.
    path = write_lines(tmp_path, [user(n) for n in range(1, 30)])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for bad_line in bad_lines:
        lines[bad_line - 1] = '{"primary_id": "broken",\n'
    path.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(InvalidInput, match=rf"users\.jsonl: line {bad_lines[0]}: not valid JSON at column"):
        load_files(engine, [str(path)])
    assert count_users(engine) == 0


def _peak_of_load(engine, tmp_path, first: int, n: int) -> int:
    path = write_lines(tmp_path, [user(i) for i in range(first, first + n)], f"users{first}.jsonl")
    tracemalloc.start()
    try:
        load_files(engine, [str(path)])
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_load_does_not_grow_with_the_file(engine, tmp_path, monkeypatch):
    # What a load holds at a time is a chunk or two: a file six times as long takes no more. (Keys
    # met in the file are looked up in the database, where the earlier chunks already are.)
    monkeypatch.setattr(load, "CHUNK", 100)
    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 10**12, raising=False)  # measured in this process
    _peak_of_load(engine, tmp_path, 0, 200)  # the code tables and caches, filled once
    small = _peak_of_load(engine, tmp_path, 1000, 1000)
    large = _peak_of_load(engine, tmp_path, 2000, 6000)
    assert large < small * 1.5, f"peak {large:,} bytes for 6,000 users against {small:,} for 1,000"


def test_an_xml_file_of_many_chunks_loads_as_its_json(engine, tmp_path, checks):
    # <users> is read as it is parsed, in the checking process too.
    from tasks.alma.xml import USERS_HEAD, USERS_TAIL, user_lines

    records = [user(n) for n in range(1, 30)]
    path = tmp_path / "users.xml"
    path.write_bytes(USERS_HEAD + user_lines(records) + USERS_TAIL)

    counts = load_files(engine, [str(path)])

    assert counts["users"] == 29 and counts["loans"] == 29 and counts["fees"] == 9
    exported = export_all(engine)
    assert [u["primary_id"] for u in exported] == [r["primary_id"] for r in records]
    assert exported[28]["item_loan"][0]["call_number"] == "QA29"


# On PostgreSQL a chunk is written without looking its keys up first (the unique indexes refuse a key
# the library or the file already holds); a refused file is loaded again with the look-ups, which word
# the messages. Whichever way, a user sees the same refusal and nothing written.

def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()


def test_keys_already_in_the_library_refuse_the_file_and_nothing_is_written(engine, tmp_path, checks):
    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, 11)], "first.jsonl"))])
    records = [user(n) for n in range(20, 45)]
    records[12]["primary_id"] = "c003"                                    # line 13, chunk 3
    records[17]["user_identifier"][0]["value"] = "B-c004"                 # line 18, chunk 4
    records[22]["item_loan"][0]["loan_id"] = "L-c005"                     # line 23, chunk 5
    records[24]["fee"] = [dict(user(6)["fee"][0])]                        # line 25, chunk 6

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    lines = str(refused.value).splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "line 13 (primary_id 'c003'): primary_id: 'c003' is already in the library database",
        "line 18 (primary_id 'c037'): user_identifier[0].value: id_type 'BARCODE' value 'B-c004' is already "
        "in the library database",
        "line 23 (primary_id 'c042'): item_loan[0].loan_id: 'L-c005' is already in the library database",
        "line 25 (primary_id 'c044'): fee[0].id: 'F-c006' is already in the library database",
        "nothing was loaded"]
    assert count_users(engine) == 10
    assert (_count(engine, "loans"), _count(engine, "fees"), _count(engine, "user_identifiers")) == (10, 3, 10)


def test_keys_met_twice_within_a_chunk_and_across_chunks_are_refused_as_before(engine, tmp_path, checks):
    records = [user(n) for n in range(1, 30)]
    records[10]["user_identifier"][0]["value"] = "B-c002"                 # line 11, chunk 2; line 2 chunk 0
    records[17]["item_loan"][0]["loan_id"] = "L-c017"                     # line 18, chunk 4 as line 17
    records[21]["primary_id"] = "c021"                                    # line 22, chunk 5 as line 21

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    lines = str(refused.value).splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "line 11 (primary_id 'c011'): user_identifier[0].value: id_type 'BARCODE' value 'B-c002' appears "
        "twice in the file (also line 2 (primary_id 'c002') user_identifier[0].value)",
        "line 18 (primary_id 'c018'): item_loan[0].loan_id: 'L-c017' appears twice in the file "
        "(also line 17 (primary_id 'c017') item_loan[0].loan_id)",
        "line 22 (primary_id 'c021'): primary_id: 'c021' appears twice in the file (also line 21)",
        "nothing was loaded"]
    assert count_users(engine) == 0 and _count(engine, "loans") == 0


def test_a_file_that_loads_is_written_without_looking_its_keys_up(engine, tmp_path, checks, monkeypatch):
    looked_up = []
    existing = load._existing
    monkeypatch.setattr(load, "_existing", lambda *args: looked_up.append(args[1].name) or existing(*args))

    counts = load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, 42)]))])

    assert counts["users"] == 41 and count_users(engine) == 41 and looked_up == []
    records = [user(n) for n in range(50, 60)]
    records[6]["item_loan"][0]["loan_id"] = "L-c001"  # in the library: the file is loaded again, looking up
    with pytest.raises(InvalidInput, match="'L-c001' is already in the library database"):
        load_files(engine, [str(write_lines(tmp_path, records, "second.jsonl"))])
    assert "loans" in looked_up and count_users(engine) == 41


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_without_a_unique_index_on_a_key_its_repeats_are_still_looked_up_and_refused(engine, tmp_path, checks):
    with engine.begin() as conn:  # a library whose loans lost the index: the look-ups must do its work
        conn.exec_driver_sql("ALTER TABLE loans DROP CONSTRAINT loans_loan_id_key")
    records = [user(n) for n in range(1, 20)]
    records[14]["item_loan"][0]["loan_id"] = "L-c002"                     # line 15, chunk 3; line 2 chunk 0

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    assert str(refused.value).splitlines()[0].endswith(
        "line 15 (primary_id 'c015'): item_loan[0].loan_id: 'L-c002' appears twice in the file "
        "(also line 2 (primary_id 'c002') item_loan[0].loan_id)")
    assert count_users(engine) == 0 and _count(engine, "loans") == 0


def _indexes(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes"
                                        " WHERE schemaname = current_schema() ORDER BY indexname").all()
        return conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name").all()


def test_a_large_load_into_an_empty_library_leaves_every_index_as_it_was(engine, tmp_path, checks):
    # Dropped for the load and built again at its end (tasks/alma/load.py, _defer_indexes), the
    # library's own index among them; a refused load rolls the drop back.
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX library_users_by_last_name ON users (last_name) WHERE last_name > ''")
    before = _indexes(engine)
    records = [user(n) for n in range(1, 30)]
    records[21]["primary_id"] = "c021"

    with pytest.raises(InvalidInput, match="'c021' appears twice in the file"):
        load_files(engine, [str(write_lines(tmp_path, records, "bad.jsonl"))])
    assert _indexes(engine) == before

    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, 30)]))])
    assert _indexes(engine) == before and count_users(engine) == 29
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # every index holds exactly its table's rows
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        else:  # the index built holds the rows: found through it alone
            conn.exec_driver_sql("SET enable_seqscan = off")
            assert conn.exec_driver_sql("SELECT count(*) FROM users WHERE last_name > ''").scalar() == 29


def test_the_writing_process_leaves_the_end_of_the_file_to_the_checking_process(monkeypatch):
    """Its own end is the index builds and the commit, which only it can do: it takes no chunk that
    begins in the file's last bytes (load._Claims `takes_until`), judged from where the chunk it reads
    begins when the next free chunk is further on; the checking process takes the rest."""
    import multiprocessing

    monkeypatch.setattr(load, "CHUNK", CHUNK)
    monkeypatch.setattr(load, "FIRST_CHUNK", FIRST_CHUNK)

    def begins(chunk: int) -> int:  # records of 100 bytes
        return load._first_record(chunk) * 100

    def claims() -> tuple:
        counter = multiprocessing.get_context("fork").Value("q", 0)
        return load._Claims(counter, takes_until=9_000), load._Claims(counter)

    writer, checker = claims()  # the checking process has not begun: the writer reads every chunk
    by_writer = {n for n in range(30) if writer.mine(n, begins(n))}
    by_checker = {n for n in range(30) if checker.mine(n, begins(n))}
    assert by_writer == set(range(23)) and begins(22) < 9_000 <= begins(23)
    assert by_checker == set(range(23, 30))

    writer, checker = claims()  # the checking process is ahead: chunks 0-24 are its
    assert [n for n in range(25) if checker.mine(n, begins(n))] == list(range(25))
    assert not writer.mine(20, begins(20))  # the next free chunk, 25, begins past 9,000 bytes
    assert [n for n in range(25, 30) if checker.mine(n, begins(n))] == list(range(25, 30))


def test_the_indexes_are_built_while_the_writer_waits_for_the_last_chunks(engine, tmp_path, monkeypatch):
    """The writer builds the dropped indexes when it has nothing of its own left to check and would
    wait for the checking process (load._build_indexes): before the last chunks' rows, which then
    keep the indexes up to date as they are written. Every index holds exactly its table's rows."""
    import os
    import time

    monkeypatch.setattr(load, "CHUNK", CHUNK)
    monkeypatch.setattr(load, "FIRST_CHUNK", FIRST_CHUNK)
    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 0)
    writer = os.getpid()
    check = load._Checker.check

    def slow_in_the_checking_process(self, number, records):
        if os.getpid() != writer and number >= 8:
            time.sleep(0.3)  # the last chunks are the checking process's: the writer waits for them
        return check(self, number, records)

    monkeypatch.setattr(load._Checker, "check", slow_in_the_checking_process)
    steps = []
    insert_rows, build_indexes = load._insert_rows, load._build_indexes
    monkeypatch.setattr(load, "_insert_rows", lambda conn, rows, parents, counts: (
        parents is None and steps.append("chunk"), insert_rows(conn, rows, parents, counts)))
    monkeypatch.setattr(load, "_build_indexes", lambda conn, statements: (
        statements and steps.append("indexes"), build_indexes(conn, statements)))
    before = _indexes(engine)

    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, 42)]))])

    assert steps.count("indexes") == 1 and steps.count("chunk") == 11
    assert 0 < steps.index("indexes") < len(steps) - 1  # after the first chunk, before the last
    assert _indexes(engine) == before and count_users(engine) == 41
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            assert conn.exec_driver_sql("SELECT count(*) FROM loans WHERE loan_status = 'ACTIVE'").scalar() == 41
