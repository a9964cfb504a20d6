"""Standard output that a reader may close: ``s3pump upload … --json | head -1``.

When the reader of stdout goes away, the next write fails with EPIPE (Python ignores SIGPIPE, so
it is a :class:`BrokenPipeError`). Machine output is a view of the run, not its purpose: losing
the reader must not stop an upload halfway (leaving files unsent and multipart uploads open).
:class:`GuardedStdout` catches the error, stops writing, points file descriptor 1 at
``/dev/null`` (so Python's own flush at exit cannot fail either), and says so once on stderr.
The run goes on; its summary and any failed-list are reported on stderr as always.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO

__all__ = ["GuardedStdout"]

NOTICE = ("s3pump: stdout was closed by its reader (broken pipe); no more output there, the run goes on "
          "(its summary follows on stderr)\n")


class GuardedStdout:
    """A text stream over ``stream`` (default ``sys.stdout``) whose writes never raise EPIPE.

    :attr:`reader_gone` is True once a write or flush met a closed pipe; later writes are dropped.
    """

    def __init__(self, stream: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout  # None: started with stdout closed (>&-)
        self._stderr = stderr
        self.reader_gone = False

    def write(self, text: str) -> None:
        if self.reader_gone:
            return
        try:
            if self.stream is None:
                raise BrokenPipeError(errno.EPIPE, "stdout is closed")
            self.stream.write(text)
        except OSError as e:
            self._closed(e)

    def flush(self) -> None:
        if self.reader_gone or self.stream is None:
            return
        try:
            self.stream.flush()
        except OSError as e:
            self._closed(e)

    def _closed(self, error: OSError) -> None:
        if not isinstance(error, BrokenPipeError) and error.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise error
        self.reader_gone = True
        if self.stream is None:
            self._notice()
            return
        try:  # Python flushes sys.stdout at exit: let that (and any buffered rest) go to /dev/null
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
            pass
        self._notice()

    def _notice(self) -> None:
        stderr = self._stderr if self._stderr is not None else sys.stderr
        if stderr is not None:
            try:
                stderr.write(NOTICE)
                stderr.flush()
            except OSError:
                pass
