"""``gc_paused()``: no cyclic garbage collection while a block allocates many short-lived containers.

Reading a batch builds 100,000 row tuples at once; each collection the interpreter triggers
meanwhile walks every tracked object, the new rows and all the long-lived ones, and cannot
free any of them (a row tuple holds no cycle; reference counting frees it). Pausing the
collector for the block saved about a quarter of an export's CPU time (docs/benchmarks.md).

The collector is one switch for the process, and blocks may overlap in several threads (a Dask
worker running export ranges side by side): the first block to enter records whether it was
enabled and disables it, the last to leave enables it again only if it was enabled then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0  # blocks inside gc_paused, over all threads
_was_enabled = False  # the collector's state when the first of them entered


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector for the ``with`` block (reference counting still frees)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
