"""No process left behind: `python -m flows` as real processes, without PREFECT_API_URL, so that the CLI
starts its own temporary Prefect server; whatever ends the CLI (SIGKILL while the server starts or while
the job runs, a reader closing its output pipe), nothing of its process tree is left running.

The CLI runs in a session of its own; "left behind" means any live process of that session."""
from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-12-20"
GONE_WITHIN_SECONDS = 10
RUN_TIMEOUT_SECONDS = 300   # a whole CLI run, server start included, on a busy machine


# ------------------------------------------------------------------ processes, read from /proc


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, session id) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()   # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[3])


def _live_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    out = []
    for pid in _live_pids():
        st = _stat(pid)
        if st and st[2] == sid and st[0] != "Z":
            out.append(pid)
    return out


def children_of(pid: int) -> list[int]:
    return [p for p in _live_pids() if (st := _stat(p)) and st[1] == pid and st[0] != "Z"]


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def assert_session_ends(sid: int) -> None:
    """Nothing of the session is left within a few seconds; if something is, it is killed and named."""
    deadline = time.monotonic() + GONE_WITHIN_SECONDS
    while (left := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        described = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:160] for pid in left}
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"left behind {GONE_WITHIN_SECONDS} s after the CLI ended: {described}")


# ------------------------------------------------------------------ a small library, a CLI environment


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    """One Prefect home for the module: the temporary server migrates its database once."""
    return tmp_path_factory.mktemp("prefect-home")


def _env(database: Path, prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(DATABASE_URL=f"sqlite:///{database}", PREFECT_HOME=str(prefect_home),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")
    return env


@pytest.fixture(scope="module")
def library_template(tmp_path_factory, prefect_home) -> Path:
    """`init-db` then `demo-data --users 200`, by the CLI itself, once."""
    database = tmp_path_factory.mktemp("library") / "template.db"
    for args in (["init-db"], ["demo-data", "--users", "200"]):
        subprocess.run([sys.executable, "-m", "flows", *args], cwd=ROOT, env=_env(database, prefect_home),
                       check=True, capture_output=True, timeout=RUN_TIMEOUT_SECONDS)
    return database


@pytest.fixture
def cli_env(library_template, prefect_home, tmp_path) -> dict[str, str]:
    """A fresh copy of the small library per test, and no PREFECT_API_URL."""
    database = tmp_path / "library.db"
    with contextlib.closing(sqlite3.connect(library_template)) as source, \
            contextlib.closing(sqlite3.connect(database)) as copy:
        source.backup(copy)   # whatever is still in the template's WAL comes along
    return _env(database, prefect_home)


def start_cli_session(args: list[str], env: dict[str, str], stderr_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows", *args], cwd=ROOT, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_path.open("w"))


def kill_cli(cli: subprocess.Popen) -> None:
    assert cli.poll() is None, "the CLI ended before the test could kill it"
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()


# ------------------------------------------------------------------ the tests


def test_death_signal_reaches_a_child_whose_parent_is_killed():
    """The mechanism on its own, without Prefect: a child spawned with the death-signal setter dies
    when its parent is SIGKILLed (a parent that runs no exit hook at all)."""
    parent_code = ("import subprocess, sys, time\n"
                   "from tasks.cli.local_server import _death_signal_setter\n"
                   "child = subprocess.Popen(['sleep', '120'], preexec_fn=_death_signal_setter())\n"
                   "print(child.pid, flush=True)\n"
                   "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = int(parent.stdout.readline())
    assert _stat(child) is not None
    kill_cli(parent)
    assert_session_ends(parent.pid)


def test_sigkill_while_the_server_starts_leaves_nothing(cli_env, tmp_path):
    cli = start_cli_session(["purge", "--as-of", AS_OF], cli_env, tmp_path / "stderr.txt")
    wait_for(lambda: children_of(cli.pid), RUN_TIMEOUT_SECONDS, "the CLI's server child")
    kill_cli(cli)
    assert_session_ends(cli.pid)


def test_sigkill_while_the_job_runs_leaves_nothing(cli_env, tmp_path):
    stderr = tmp_path / "stderr.txt"
    # A real run in batches of one user: it runs for a while after the flow run begins.
    cli = start_cli_session(["purge", "--as-of", AS_OF, "--confirm", "--batch-size", "1"], cli_env, stderr)
    wait_for(lambda: "Beginning flow run" in stderr.read_text(), RUN_TIMEOUT_SECONDS, "the flow run to begin")
    server = children_of(cli.pid)
    assert server, "the CLI runs its job on a server child of its own"
    kill_cli(cli)
    assert_session_ends(cli.pid)


def _pipeline(command: str, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run a shell pipeline in a session of its own; (the shell's result, the session id)."""
    shell = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=(tmp_path / "shell-stderr.txt").open("w"), text=True)
    out, _ = shell.communicate(timeout=RUN_TIMEOUT_SECONDS)
    return subprocess.CompletedProcess(command, shell.returncode, out, ""), shell.pid


def test_head_closing_the_pipe_leaves_nothing(cli_env, tmp_path):
    result, sid = _pipeline(
        f"{sys.executable} -m flows purge --as-of {AS_OF} 2>{tmp_path}/cli-stderr.txt | head -1", cli_env, tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("# Purge User Records") and result.stdout.count("\n") == 1
    assert_session_ends(sid)
    assert "Traceback" not in (tmp_path / "cli-stderr.txt").read_text()


def test_reader_gone_before_the_report_ends_the_cli_quietly(cli_env, tmp_path):
    """`| true` closes the pipe before the CLI writes: its report meets a broken pipe for sure."""
    result, sid = _pipeline(
        f"{sys.executable} -m flows purge --as-of {AS_OF} 2>{tmp_path}/cli-stderr.txt | true; "
        "echo ${PIPESTATUS[0]}", cli_env, tmp_path)
    assert result.stdout.strip() == "1"   # contract: 1 "anything else"; the job itself ran
    assert_session_ends(sid)
    stderr = (tmp_path / "cli-stderr.txt").read_text()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr
    assert "Finished in state Completed" in stderr


# ------------------------------------------------------------------ a given API is used as it is


@pytest.fixture
def no_spawning(monkeypatch):
    import tasks.cli.local_server as local_server

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(local_server.subprocess, "Popen", refuse)
    return local_server


def test_a_given_api_url_starts_nothing(no_spawning, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert no_spawning.start_local_prefect_server() is None
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"


def test_an_api_url_from_prefect_settings_starts_nothing(no_spawning, monkeypatch):
    """A profile, prefect.toml or a test harness gives the URL through Prefect's settings, not the environment."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert no_spawning.start_local_prefect_server() is None
    assert "PREFECT_API_URL" not in os.environ


def test_without_ephemeral_mode_nothing_is_started(no_spawning, monkeypatch):
    """Prefect then refuses with its own message naming PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_ENABLED: False}, restore_defaults={PREFECT_API_URL}):
        assert no_spawning.start_local_prefect_server() is None
