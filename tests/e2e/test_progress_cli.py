"""The progress view: totals from events (``--from-list`` included), and one line that fits the terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import S3Env, list_all, run_cli


@pytest.mark.e2e
def test_from_list_progress_shows_the_lists_totals(s3env: S3Env, bucket: str, tmp_path: Path,
                                                  state_dir: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(b"x" * (1000 * (i + 1)))
        files.append(f)
    listing = tmp_path / "failed.jsonl"
    listing.write_text("".join(json.dumps({"source": str(f), "key": f"l/{f.name}"}) + "\n" for f in files))
    r = run_cli(["upload", "--from-list", str(listing), f"s3://{bucket}/l/", "--progress", "plain"],
                s3env.env(state_dir))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert sorted(list_all(s3env.boto(), bucket, "l/")) == [f"l/{f.name}" for f in files]
    lines = [ln for ln in err.splitlines() if ln.startswith("s3pump: ")]
    assert lines and "3/3 files" in lines[-1] and "5.9 KiB/5.9 KiB" in lines[-1], err
    assert "/0+ files" not in err


def _tmux_screen(cmd: str, width: int, env: dict[str, str], wait_s: float) -> list[str]:
    """Run ``cmd`` in a detached tmux of ``width`` columns, on a tmux server of its own (a socket in a
    temporary directory: never the user's server); the screen's lines after ``wait_s``."""
    exports = " ".join(f"{k}={v!r}" for k, v in env.items() if k.startswith(("AWS_", "S3PUMP_")))
    with tempfile.TemporaryDirectory() as home:
        tmux = ["tmux", "-S", os.path.join(home, "tmux.sock"), "-f", "/dev/null"]
        tmux_env = {**env, "HOME": home}
        subprocess.run([*tmux, "new-session", "-d", "-x", str(width), "-y", "20",
                        f"env {exports} {cmd}; sleep 30"], check=True, env=tmux_env)
        try:
            time.sleep(wait_s)
            out = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, check=True, text=True,
                                 env=tmux_env)
            return out.stdout.splitlines()
        finally:
            subprocess.run([*tmux, "kill-server"], check=False, env=tmux_env, capture_output=True)


@pytest.mark.timing
@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
@pytest.mark.parametrize("width", [80, 200])
def test_progress_bar_is_one_line_that_fits_the_terminal(s3env: S3Env, bucket: str, tmp_path: Path,
                                                         state_dir: Path, width: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}.bin").write_bytes(bytes([i]) * 300_000)
    env = s3env.env(state_dir)
    # --bwlimit keeps the run going for a few seconds, so the live line is on screen when captured
    cmd = f"{sys.executable} -m s3pump upload {src} s3://{bucket}/p/ --bwlimit 2MiB"
    screen = _tmux_screen(cmd, width, env, wait_s=3.0)
    lines = [ln for ln in screen if ln.strip()]
    bars = [ln for ln in lines if ln.startswith("upload ")]
    assert len(bars) == 1, screen  # one line, never wrapped or repeated
    bar = bars[0]
    assert len(bar) <= width
    assert "/40 files" in bar and "MiB" in bar and "/s" in bar, bar
    assert " files" in bar and "bytes" not in bar  # files are counted as files, bytes as bytes
