"""A reader that closes the CLI's output early (`python -m flows purge | head -1`) ends it quietly:
no traceback, no "Exception ignored" at exit, and the `atexit` hooks (the local Prefect server's
stop among them) still run. Python ignores SIGPIPE, so the closed pipe arrives as a BrokenPipeError
on the next write to stdout; the CLI asks `stdout_closed_by_reader()` whether that is what
happened (a broken pipe elsewhere, e.g. a network connection, is still an error to report)."""
from __future__ import annotations

import os
import select
import sys


def stdout_closed_by_reader() -> bool:
    """True when nobody reads stdout any more; stdout then points at /dev/null from here on, so the
    interpreter's last flush of what is still buffered does not fail again on its way out."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, 0)   # POLLERR and POLLHUP are reported whatever is asked for
        gone = any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):   # no real file behind stdout (a test's capture)
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return gone
