"""A local process's CPU time as the kernel counts it, for the benchmarks that read the server's share."""
from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    # The fields after the command's name (which may hold spaces): state, ppid, ...; utime is [11].
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` so far (/proc/<pid>/stat; OSError when it is gone or not on this machine)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def server_cpu_seconds(backend_pid: int) -> float:
    """The CPU so far of the whole PostgreSQL server that `backend_pid` belongs to: its postmaster, every
    process it has started that still runs (backends, WAL writer, checkpointer, autovacuum), and, as
    the kernel adds them to the postmaster when it reaps them, those that have ended: a backend that
    connects and ends between two readings counts too. OSError when it cannot be read."""
    postmaster = int(_stat(backend_pid)[1])
    fields = _stat(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, and those of reaped children
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(entry.name)
        except OSError:
            continue  # ended meanwhile: reaped into the postmaster's figures
        if int(child[1]) == postmaster:
            total += int(child[11]) + int(child[12])
    return total / TICK
