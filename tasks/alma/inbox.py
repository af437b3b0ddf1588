"""What a forked process sends through a pipe, read ahead by a thread (load's checking process, export's
second process)."""
from __future__ import annotations

import queue
import threading
from multiprocessing.connection import Connection


class Inbox:
    """The messages (bytes) of a pipe, read by a thread as they come, `ahead` of them at most waiting
    (memory stays flat); None once the other end is closed. A thread, so that the other process can
    send its next message while this one is busy: a pipe holds only 64 KB."""

    def __init__(self, pipe: Connection, ahead: int, name: str):
        self.pipe = pipe
        self.queue: queue.Queue = queue.Queue(maxsize=ahead)
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read, name=name, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.pipe.recv_bytes()
            except (EOFError, OSError):
                data = None
            while not self.stop.is_set():
                try:
                    self.queue.put(data, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if data is None:
                return

    def get(self, block: bool = True, timeout: float | None = None) -> bytes | None:
        """The next message; queue.Empty when there is none yet and `block` is false, or none within
        `timeout` seconds."""
        return self.queue.get(block=block, timeout=timeout)

    def close(self) -> None:
        """Once the other process has ended (or been ended): the thread is done at once."""
        self.stop.set()
        self.reader.join()
