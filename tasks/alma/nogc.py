"""The cyclic garbage collector off while a load or an export builds its objects.

A chunk of a load or an export is hundreds of thousands of small dicts and lists, none of them in a
cycle (they are freed by reference counting as each chunk ends); the collector would walk them again
and again as they are built, a third of the parse time of a load and a sixth of an export.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
