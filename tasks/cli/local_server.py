"""A local Prefect API owned by the command-line process, so that it can never outlive it.

Without `PREFECT_API_URL`, Prefect starts a temporary server itself (`SubprocessASGIServer`, a uvicorn
child of ~230 MB) on the first `get_client()` and stops it from an `atexit` hook. A CLI killed with
SIGKILL or SIGTERM runs no `atexit` hook, so that server would live on for good. Here the CLI starts
the same server itself, as a child that the kernel sends SIGTERM when the CLI dies
(`prctl(PR_SET_PDEATHSIG)`), and points this process's Prefect at it through `PREFECT_API_URL`.
Prefect then starts nothing of its own. A normal exit stops the server as Prefect does (SIGTERM,
then SIGKILL after 5 s), after Prefect has flushed its logs and events to it.

Start it early (the server takes seconds to import and migrate its database; the CLI's own imports
and validation run meanwhile) and wait for it just before the first flow run:

    server = start_local_prefect_server()      # None: an API is configured, or Prefect may not start one
    ...                                        # import the flow, validate the parameters
    if server:
        server.wait_until_ready()
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

PR_SET_PDEATHSIG = 1   # linux/prctl.h
PORT_IN_USE = 3        # uvicorn's exit status when it cannot bind its port
STOP_GRACE_SECONDS = 5


def _death_signal_setter() -> Callable[[], None] | None:
    """A `preexec_fn` that asks the kernel to SIGTERM the child when its parent dies (Linux), or None.
    Everything it calls is bound here, in the parent: the child runs it between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()
    getppid, exit_now = os.getppid, os._exit

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if getppid() != parent:   # the parent died before the signal was armed
            exit_now(1)

    return die_with_parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _configured_api_url() -> tuple[str | None, bool, int]:
    """(the API URL Prefect is configured with, whether it may start a local server, start-up timeout),
    from every source Prefect reads: environment, profile, prefect.toml, test harness contexts."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return settings.api.url, settings.server.ephemeral.enabled, settings.server.ephemeral.startup_timeout_seconds


def _point_prefect_at(api_url: str) -> None:
    """PREFECT_API_URL for this process (and the flow runs, tasks and threads Prefect starts in it)."""
    os.environ["PREFECT_API_URL"] = api_url
    # The temporary server serves no UI and is gone after the run: no "View at" link to it.
    os.environ.setdefault("PREFECT_UI_URL", "")
    if "prefect.context" in sys.modules:
        # Prefect has read its settings already; the global settings context is what threads see.
        sys.modules["prefect.context"].refresh_global_settings_context()


class LocalPrefectServer:
    """The CLI's own temporary Prefect API: a uvicorn child that dies with this process."""

    def __init__(self, startup_timeout: float = 20):
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._ready = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> LocalPrefectServer:
        """Spawn the server (returns at once) and point this process's Prefect at it."""
        if threading.current_thread() is not threading.main_thread():
            # The kernel's death signal follows the thread that forked the child, not the process.
            raise RuntimeError("start the local Prefect server from the main thread")
        self._spawn()
        atexit.register(self.stop)
        return self

    def _spawn(self) -> None:
        import prefect
        from prefect.settings import get_current_settings

        self.port = _free_port()
        env = {
            **os.environ,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            # what Prefect's own SubprocessASGIServer sets: no UI, ephemeral server mode
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, preexec_fn=_death_signal_setter(),
        )
        _point_prefect_at(self.api_url)

    def wait_until_ready(self) -> None:
        """Block until the API answers its health check (RuntimeError after the start-up timeout)."""
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready:
            assert self.process is not None, "start() first"
            status = self.process.poll()
            if status == PORT_IN_USE:   # someone took the port between our probe and uvicorn's bind
                self._spawn()
            elif status is not None:
                raise RuntimeError(f"the local Prefect server exited with status {status} while starting")
            elif self._healthy():
                self._ready = True
            elif time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the local Prefect server did not answer within {self.startup_timeout:g} s "
                    "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS; or set PREFECT_API_URL to a running server)")
            else:
                time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent (also the atexit hook)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_local_prefect_server() -> LocalPrefectServer | None:
    """Start the CLI's own Prefect API unless one is configured; None when nothing was started.

    A `PREFECT_API_URL` (environment, profile, prefect.toml) is used as it is. With ephemeral mode
    switched off (`PREFECT_SERVER_EPHEMERAL_ENABLED=false`) nothing is started either, and Prefect
    says what to set. Call it from the main thread."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    api_url, may_start, timeout = _configured_api_url()
    if api_url or not may_start:
        return None
    return LocalPrefectServer(startup_timeout=timeout).start()
