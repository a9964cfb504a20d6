"""Issue 26: what a resumed or re-planned run shows. Files skipped (done in an earlier run,
unchanged under sync) count their bytes as done, so the end reads N/N files and X/X bytes; a total
that lags the files already finished (sync's Discovered every 256 files) is never shown below them;
a rerun says it resumes, and a second signal says what it does."""

from __future__ import annotations

import pytest

from s3pump.events import Discovered, FileDone, FileSkipped, FilesUnchanged, Resuming, StopRequested
from s3pump.ui.progress import Counts, progress_line
from s3pump.ui.views import _notices


def test_skipped_files_count_as_done_and_the_end_is_whole() -> None:
    c = Counts()
    c.update(Discovered(3, 3000, final=True))
    c.update(FileSkipped("/d/a", "p/a", 1000, "done in an earlier run"))
    c.update(FilesUnchanged(1, 1000))
    c.update(FileDone("/d/c", "p/c", 1000, "etag", 0.01, 1))
    head, tail = progress_line("files", c, "upload")
    assert "3/3 files" in head
    assert tail.startswith("2.9 KiB/2.9 KiB"), tail
    assert c.bytes == 1000  # the rate counts only bytes sent


def test_done_is_never_shown_over_a_lagging_total() -> None:
    c = Counts()
    c.update(Discovered(256, 256_000))
    for i in range(310):
        c.update(FileSkipped(f"/d/{i}", f"p/{i}", 1000, "unchanged"))
    head, tail = progress_line("files", c, "sync")
    assert "310/310+ files" in head, head
    assert tail.startswith("302.7 KiB/302.7 KiB+"), tail  # 310 x 1000 bytes done; the total lagged at 256,000
    files_total, bytes_total = c.shown_totals
    assert files_total >= c.files and bytes_total >= c.done_bytes


def test_a_rerun_says_it_resumes_and_a_second_signal_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    _notices(Resuming(841, 3))
    _notices(StopRequested("SIGINT", False, again=True))
    _notices(StopRequested("SIGINT", False, again=True, hurry=True))
    err = capsys.readouterr().err
    assert "resuming: 841 files done in an earlier run" in err and "3 multipart uploads continue" in err
    assert "SIGINT again: stopping now; open multipart uploads are kept for the resume journal" in err
    assert "SIGINT again: no longer waiting for requests in flight" in err
