"""Writing s3pump's local files (resume journal, failed-list) without a traceback or an open upload.

The state directory (``$S3PUMP_STATE_DIR``, else ``$XDG_STATE_HOME/s3pump`` or the platform's),
a ``--failed-list`` directory, or the disk under them may refuse writes: read-only, not ours, or
full. Two moments matter:

* before any upload: :func:`probe_directory` creates the directory and a temporary file in it,
  and a journal that cannot be opened is reported by :func:`state_error`; the run ends with one
  line and exit 2, having sent nothing;
* mid-run (a journal commit or a failed-list line on a disk that just filled):
  :class:`GuardedSubscriber` catches the write error, stops passing events to that file, and
  calls ``on_error`` once, which stops the run with its in-flight multipart uploads aborted; the
  job then raises the :class:`~s3pump.errors.LocalStateError`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import LocalStateError, is_out_of_files, open_files_error
from .events import Event, Subscriber

__all__ = ["GuardedSubscriber", "is_write_refused", "probe_directory", "state_error"]

#: What to do, per kind of file, when its directory refuses writes.
_ADVICE = {
    "resume journal": "set S3PUMP_STATE_DIR to a writable directory",
    "failed-list": "pass --failed-list with a file in a writable directory (or set S3PUMP_STATE_DIR)",
}


#: SQLite primary result codes of an environment that refuses writes (https://sqlite.org/rescode.html):
#: SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_SQLITE_ENV_CODES = frozenset({3, 8, 10, 13, 14})


def is_write_refused(exc: BaseException) -> bool:
    """``exc`` says the filesystem refused a write (an OSError, or SQLite's PERM, READONLY, IOERR,
    FULL or CANTOPEN), as opposed to a bug or a damaged file."""
    if isinstance(exc, OSError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _SQLITE_ENV_CODES


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return "full" in str(exc).lower()  # sqlite3: "database or disk is full"


def _out_of_files(exc: BaseException) -> bool:
    """EMFILE/ENFILE, or SQLite's CANTOPEN while this process has no file descriptor left."""
    if is_out_of_files(exc):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None or (code & 0xFF) != 14:
        return False
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))  # a descriptor to spare?
    except OSError as e:
        return is_out_of_files(e)
    return False


def state_error(path: str | Path, what: str, exc: BaseException) -> LocalStateError:
    """The one-line error for ``what`` (``"resume journal"``, ``"failed-list"``) failing at ``path``;
    when the process ran out of file descriptors, that (:class:`OpenFilesError`), not the file."""
    if _out_of_files(exc):
        return open_files_error(exc if isinstance(exc, OSError) else None)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    advice = f"free space on that filesystem, or {_ADVICE[what]}" if _is_full(exc) else _ADVICE[what]
    return LocalStateError(f"{path}: cannot write the {what} ({reason}); {advice}")


def probe_directory(directory: Path, what: str) -> None:
    """Create ``directory`` (and parents) and a temporary file in it, which is removed again.

    Raises:
        LocalStateError: the directory cannot be created or written (read-only, permissions, full).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".s3pump-probe-"):
            pass
    except OSError as e:
        raise state_error(directory, what, e) from None


class GuardedSubscriber:
    """``subscriber`` (the journal or the failed-list writer) with its write errors caught.

    The first :class:`OSError` or :class:`sqlite3.Error` becomes :attr:`error` (a
    :class:`LocalStateError` naming ``path``) and is handed to ``on_error``; later events are dropped.
    """

    def __init__(self, subscriber: Subscriber, path: Callable[[], Path], what: str,
                 on_error: Callable[[LocalStateError], None]) -> None:
        self.subscriber = subscriber
        self.path = path
        self.what = what
        self.on_error = on_error
        self.error: LocalStateError | None = None

    def __call__(self, event: Event) -> None:
        if self.error is not None:
            return
        try:
            self.subscriber(event)
        except (OSError, sqlite3.Error) as e:
            if not is_write_refused(e):
                raise
            self.error = state_error(self.path(), self.what, e)
            self.on_error(self.error)
