"""Issue 12, item 8: ``--json`` lines to a reader that went away (``| head -1``) stop the lines, never
the run: no exception reaches the engine, one notice goes to stderr."""

from __future__ import annotations

import io
import os

from s3pump.errors import SourceNotFoundError
from s3pump.events import FileDone, FileFailed
from s3pump.ui.jsonlines import JsonLines
from s3pump.ui.stdout_guard import NOTICE, GuardedStdout


def test_json_lines_to_a_closed_pipe_stop_quietly() -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line
    out = open(w, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
    err = io.StringIO()
    lines = JsonLines(out)
    lines.stream = GuardedStdout(out, stderr=err)
    for i in range(1000):
        lines(FileDone(f"/src/{i}", f"k/{i}", 10, "etag", 0.01, 1))
        lines(FileFailed(f"/src/{i}", f"k/{i}", 10, SourceNotFoundError("gone")))
    lines.summary({"event": "summary", "files_done": 1000})
    assert lines.stream.reader_gone
    assert err.getvalue() == NOTICE
    out.close()  # its buffered rest now goes to /dev/null: no error


def test_other_write_errors_still_raise() -> None:
    class Full(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(28, "No space left on device")

    g = GuardedStdout(Full(), stderr=io.StringIO())
    try:
        g.write("x\n")
    except OSError as e:
        assert e.errno == 28
    else:
        raise AssertionError("ENOSPC on stdout must not be mistaken for a reader that left")
    assert not g.reader_gone


def test_stdout_closed_from_the_start() -> None:
    err = io.StringIO()
    g = GuardedStdout(None, stderr=err)
    g.stream = None  # as with `s3pump ... >&-`: sys.stdout is None
    g.write("{}\n")
    g.flush()
    assert g.reader_gone and err.getvalue() == NOTICE
