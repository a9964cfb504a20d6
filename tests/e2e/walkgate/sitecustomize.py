"""A gate in the walk, for tests/e2e/test_symlink_swap.py (loaded through PYTHONPATH by the CLI
process under test and by its ``--cluster`` workers; nothing happens without its variables).

With ``S3PUMP_TEST_GATE`` (a path prefix) and ``S3PUMP_TEST_GATE_ROOT`` (a directory) set, the first
listing of that root (``os.scandir`` of its path, or of a descriptor open on it) in any process creates
``<gate>.listed`` once it has read the entries, then waits for ``<gate>.go`` before handing them
over: the test changes the tree at that exact point, after the walk listed the root and before it
looks at the entries (stats them, enters the directories, reads the files). Any listing in another
process meanwhile waits for ``.go`` too. Written against ``os.scandir`` only, so it gates the old
walk (by path) and the new one (by descriptor) alike. Upload's count ahead (its thread
``s3pump-count-ahead``: names and sizes for the progress view, no file read) is not gated: it is the
walk's listing that the test changes the tree after.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

_GATE = os.environ.get("S3PUMP_TEST_GATE")
_ROOT = os.environ.get("S3PUMP_TEST_GATE_ROOT")


class _Listed:
    """What ``os.scandir`` returns, over entries already read."""

    def __init__(self, entries: list[os.DirEntry]) -> None:
        self._it = iter(entries)

    def __iter__(self) -> _Listed:
        return self

    def __next__(self) -> os.DirEntry:
        return next(self._it)

    def __enter__(self) -> _Listed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None


def _install(gate: str, root: str) -> None:
    real_scandir = os.scandir
    real_root = os.path.realpath(root)

    def names_root(arg: object) -> bool:
        try:
            if isinstance(arg, int):
                return os.readlink(f"/proc/self/fd/{arg}") == real_root
            return os.path.realpath(os.fspath(arg)) == real_root  # type: ignore[arg-type]
        except (OSError, TypeError):
            return False

    def wait_for_go() -> None:
        deadline = time.monotonic() + 120
        while not os.path.exists(f"{gate}.go") and time.monotonic() < deadline:
            time.sleep(0.01)

    def scandir(arg: object = ".") -> object:
        if threading.current_thread().name == "s3pump-count-ahead":
            return real_scandir(arg)  # type: ignore[call-overload]
        if os.path.exists(f"{gate}.go"):
            return real_scandir(arg)  # type: ignore[call-overload]
        if os.path.exists(f"{gate}.listed"):
            wait_for_go()
            return real_scandir(arg)  # type: ignore[call-overload]
        if not names_root(arg):
            return real_scandir(arg)  # type: ignore[call-overload]
        with real_scandir(arg) as it:  # type: ignore[call-overload]
            entries = list(it)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(f"{gate}.listed", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        wait_for_go()
        return _Listed(entries)

    os.scandir = scandir  # type: ignore[assignment]


if _GATE and _ROOT:
    _install(_GATE, _ROOT)
