"""Issue 26, what a person sees during a long run, on an 80-column terminal (tests/e2e/terminal.py: a
pseudo-terminal played on an emulated screen). The total (``N/400 files``) and an ETA are on screen
within 3 s of the start, though the walk is held back by the engine's queue (the count runs ahead);
a resumed run says it resumes and never shows more files or bytes done than the total; a single big
file under ``--bwlimit`` shows its bytes moving long before it is done (bytes counted as they are sent,
not when the request ends)."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3pump.events import Event, FileDone, Tick
from s3pump.jobs.upload import upload
from s3pump.ui.progress import Counts, progress_line
from tests.conftest import S3Env, list_all
from tests.e2e.terminal import Terminal

KIB = 1024
MIB = 1024 * KIB
_UNITS = {"B": 1, "KiB": KIB, "MiB": MIB, "GiB": MIB * KIB}
#: the live line: ``upload  12/400 files  ━━━  117.2 KiB/3.9 MiB  1.0 MiB/s  ETA 0:00:04``
_LINE = re.compile(r"^upload\s+(\d[\d,]*)/(\d[\d,]*)(\+?) files\b.*?([\d.]+) (B|KiB|MiB|GiB)/([\d.]+) (B|KiB|MiB|GiB)")


def _progress(lines: list[str]) -> tuple[int, int, bool, float, float, str] | None:
    """The live line's (files done, files total, total final, bytes done, bytes total, line), if on screen."""
    for line in lines:
        m = _LINE.match(line)
        if m:
            done_b = float(m[4]) * _UNITS[m[5]]
            total_b = float(m[6]) * _UNITS[m[7]]
            return int(m[1].replace(",", "")), int(m[2].replace(",", "")), not m[3], done_b, total_b, line
    return None


def _tree(root: Path, files: int, size: int) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"d{i % 8}").mkdir(exist_ok=True)
        (root / f"d{i % 8}" / f"f{i:03d}.bin").write_bytes(bytes([i % 251]) * size)
    return root


def _never_over_the_total(term: Terminal) -> None:
    for at_s, lines in term.samples:
        p = _progress(lines)
        if p is not None:
            assert p[0] <= p[1], (at_s, p[5])
            assert p[3] <= p[4] * 1.001, (at_s, p[5])  # the sizes are rounded alike on one line


@pytest.mark.timing
@pytest.mark.e2e
def test_total_and_eta_within_3s_on_a_400_file_upload_at_80_columns(s3env: S3Env, warm_bucket: str, tmp_path: Path,
                                                                     state_dir: Path) -> None:
    src = _tree(tmp_path / "src", 400, 10 * KIB)
    argv = [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{warm_bucket}/p/", "--bwlimit", "1MiB",
            "--concurrency", "4"]
    with Terminal(argv, s3env.env(state_dir), cols=80) as term:
        shown = term.wait_for(lambda lines: (p := _progress(lines)) and p[1] == 400 and p[2]
                              and re.search(r"ETA \d+:\d\d:\d\d", p[5]) and p, timeout_s=3.0)
        assert shown, f"after {time.monotonic() - term.started:.1f} s:\n" + "\n".join(term.lines)
        assert shown[0] < 300, shown[5]  # the total came while most files were still to send
        assert len(shown[5]) <= 80
        assert term.finish(60) == 0, "\n".join(term.lines)
        _never_over_the_total(term)
        last = _progress(term.lines)
        assert last is not None and last[:3] == (400, 400, True), term.lines
    assert len(list_all(s3env.boto(), warm_bucket, "p/")) == 400


@pytest.mark.timing
@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the pty test above runs anyway)")
def test_total_and_eta_within_3s_in_tmux_at_80_columns(s3env: S3Env, warm_bucket: str, tmp_path: Path,
                                                       state_dir: Path) -> None:
    """The same in a real tmux window of 80 columns, on a tmux server of the test's own (its socket in
    ``tmp_path``: never the user's server), the command's whole environment written to its script."""
    src = _tree(tmp_path / "src", 400, 10 * KIB)
    argv = [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{warm_bucket}/p/", "--bwlimit", "1MiB",
            "--concurrency", "4"]
    script = tmp_path / "run.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in s3env.env(state_dir).items())
    script.write_text(f"{exports}{shlex.join(argv)}\necho exit=$?\nsleep 60\n")
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "xterm-256color"}
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "sh", str(script)],
                   check=True, env=env)
    started = time.monotonic()
    try:
        def screen() -> list[str]:
            out = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=True, env=env)
            return out.stdout.splitlines()

        shown, lines = None, []
        while shown is None and time.monotonic() - started < 3.0:
            lines = screen()
            p = _progress(lines)
            if p and p[1] == 400 and p[2] and re.search(r"ETA \d+:\d\d:\d\d", p[5]):
                shown = p
            time.sleep(0.1)
        assert shown, f"after {time.monotonic() - started:.1f} s:\n" + "\n".join(lines)
        assert shown[0] < 300 and len(shown[5]) <= 80, shown[5]
        while "exit=" not in " ".join(lines) and time.monotonic() - started < 60:
            time.sleep(0.3)
            lines = screen()
            p = _progress(lines)
            assert p is None or (p[0] <= p[1] and p[3] <= p[4] * 1.001), lines
        assert "exit=0" in " ".join(lines), lines
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, env=env, capture_output=True)
    assert len(list_all(s3env.boto(), warm_bucket, "p/")) == 400


@pytest.mark.e2e
def test_a_resumed_run_says_so_and_never_shows_done_over_the_total(s3env: S3Env, bucket: str, tmp_path: Path,
                                                                    state_dir: Path) -> None:
    src = _tree(tmp_path / "src", 400, 10 * KIB)
    env = s3env.env(state_dir)
    argv = [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/p/", "--bwlimit", "1MiB",
            "--concurrency", "4"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(list_all(s3env.boto(), bucket, "p/")) < 60 and time.monotonic() < deadline:
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 130
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    sent_before = len(list_all(s3env.boto(), bucket, "p/"))
    assert 0 < sent_before < 400
    with Terminal(argv, env, cols=80) as term:
        assert term.finish(60) == 0, "\n".join(term.lines)
        screen = " ".join(term.lines)
        assert re.search(r"resuming: [\d,]+ files done in an earlier run", screen), term.lines
        _never_over_the_total(term)
        last = _progress(term.lines)
        assert last is not None and last[:3] == (400, 400, True), term.lines
        assert last[3] == last[4]  # the end reads X/X: skipped files' bytes count as done
    assert len(list_all(s3env.boto(), bucket, "p/")) == 400


@pytest.mark.timing
@pytest.mark.e2e
def test_a_big_file_under_bwlimit_shows_bytes_moving(s3env: S3Env, warm_bucket: str, tmp_path: Path,
                                                     state_dir: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (3 * MIB // 256))
    argv = [sys.executable, "-m", "s3pump", "upload", str(big), f"s3://{warm_bucket}/big.bin", "--bwlimit", "600KiB"]
    with Terminal(argv, s3env.env(state_dir), cols=80) as term:
        moving = term.wait_for(lambda lines: (p := _progress(lines)) and p[0] == 0 and p[3] > 0 and p, timeout_s=4.0)
        assert moving, "\n".join(term.lines)  # bytes on screen while the one file is not done
        at_s = time.monotonic() - term.started
        assert term.finish(60) == 0, "\n".join(term.lines)
        done_s = time.monotonic() - term.started
    assert done_s - at_s > 1.0, (at_s, done_s)  # seen well before the file was done
    assert s3env.boto().head_object(Bucket=warm_bucket, Key="big.bin")["ContentLength"] == 3 * MIB


@pytest.mark.timing
@pytest.mark.e2e
def test_bytes_are_counted_as_parts_are_sent(s3env: S3Env, warm_bucket: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (12 * MIB))
    counts = Counts()
    seen: list[tuple[float, int, str]] = []  # (time, bytes shown, the progress line's tail) at each Tick
    finished: list[float] = []

    def watch(event: Event) -> None:
        counts.update(event)
        if isinstance(event, Tick):
            seen.append((time.monotonic(), counts.bytes, progress_line("files", counts, "upload")[1]))
        elif isinstance(event, FileDone):
            finished.append(time.monotonic())

    config = s3env.config(max_bandwidth_bps=4 * MIB, part_size_bytes=6 * MIB, multipart_threshold_bytes=6 * MIB)
    report = upload([big], f"s3://{warm_bucket}/big.bin", config, subscribers=[watch])
    assert report.files_done == 1 and finished
    early = [(t, b, tail) for t, b, tail in seen if b > 0 and finished[0] - t > 1.0]
    assert early, seen  # bytes moved on the progress line more than a second before the parts were done
    assert not early[0][2].startswith("0 B/"), early[0]
    assert all(b <= 12 * MIB for _, b, _ in seen)
