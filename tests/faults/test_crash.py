"""Crash suite: SIGKILL the upload at three points (one of them mid-multipart), rerun the same
command each time, and at the end every object is correct, no multipart upload is open, and the
journal is gone. The proxy log proves the reruns did not redo work: no file the journal had as
done at a kill was sent again, and no part it had as done was sent again (its upload was
resumed, not restarted).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy, LogEntry
from tests.conftest import S3Env
from tests.faults.conftest import MIB, Tree, assert_all_uploaded, make_tree, proxied_env

SENDS = ("PutObject", "CreateMultipartUpload", "UploadPart")


def _journal_state(state_dir: Path) -> tuple[set[str], set[tuple[str, int]], set[str]]:
    """(keys done, (upload ID, part number) done, upload IDs open) in the run's journal file."""
    journals = list((state_dir / "journals").glob("*.sqlite"))
    assert len(journals) == 1, journals
    with sqlite3.connect(str(journals[0])) as db:
        done = {k for (k,) in db.execute("SELECT key FROM files WHERE status='done'")}
        parts = {(u, n) for u, n in db.execute("SELECT upload_id, part_number FROM parts")}
        uploads = {u for (u,) in db.execute("SELECT upload_id FROM uploads")}
    return done, parts, uploads


def _since(proxy: FaultProxy, mark: int) -> list[LogEntry]:
    """Requests that arrived after ``mark`` (``proxy.seq`` when the run started)."""
    return [e for e in proxy.log if e.seq > mark]


def _start(src: Path, bucket: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/k/", "--no-progress",
         "--concurrency", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], proxy: FaultProxy, ready: Callable[[list[LogEntry]], bool],
               timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"upload ended (exit {proc.returncode}) before the kill point: "
                        f"{proc.stderr.read().decode() if proc.stderr else ''}")
        if ready(list(proxy.log)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.005)
    proc.kill()
    pytest.fail("kill point never reached")


def _mid_multipart(state_dir: Path) -> Callable[[list[LogEntry]], bool]:
    """Ready once the journal holds a completed part of a multipart upload not yet completed."""
    def ready(log: list[LogEntry]) -> bool:
        if not any(e.type == "UploadPart" and e.status == 200 for e in log):
            return False
        try:
            return bool(_journal_state(state_dir)[1])
        except (AssertionError, sqlite3.Error):
            return False

    return ready


def _crash_and_resume(tmp_path: Path, s3env: S3Env, proxy: FaultProxy, state_dir: Path, bucket: str,
                      tree: Tree, seed: int) -> None:
    rng = random.Random(seed)
    # slow requests down a little so each kill lands while there is work in flight
    proxy.plan = FaultPlan(delay_s={"PutObject": 0.01, "UploadPart": 0.25})
    env = proxied_env(s3env, proxy, state_dir)
    n_puts = rng.randint(3, 15)
    n_any = rng.randint(1, 4)
    run_start = [0]  # proxy.seq when the current run started
    kill_points: list[tuple[str, Callable[[list[LogEntry]], bool]]] = [
        (f"after {n_puts} finished PUTs",
         lambda log: sum(e.type == "PutObject" and e.status == 200 for e in log) >= n_puts),
        ("mid-multipart (a part journaled, upload not completed)", _mid_multipart(state_dir)),
        # a random point: after a random number of further answered requests of any kind
        (f"after {n_any} answered requests", lambda log: sum(e.seq > run_start[0] and e.status is not None
                                                             for e in log) >= n_any),
    ]
    done_at_kill: set[str] = set()
    parts_at_kill: set[tuple[str, int]] = set()
    for name, ready in kill_points:
        mark = run_start[0] = proxy.seq
        _kill_when(_start(tree.root, bucket, env), proxy, ready)
        # nothing finished before an earlier kill was sent again in this run
        again = [e for e in _since(proxy, mark) if e.type in SENDS and e.key in done_at_kill]
        assert not again, f"{name}: finished files sent again: {again[:5]}"
        resent = [e for e in _since(proxy, mark)
                  if e.type == "UploadPart" and (e.upload_id, e.part_number) in parts_at_kill]
        assert not resent, f"{name}: completed parts sent again: {resent[:5]}"
        done, parts, _uploads = _journal_state(state_dir)
        assert done >= done_at_kill  # the journal only grows
        done_at_kill, parts_at_kill = done, parts_at_kill | parts
        print(f"killed {name}: journal has {len(done)} files done, {len(parts)} parts of open uploads")
    assert parts_at_kill, "no multipart upload was interrupted: the resume path was not exercised"

    mark = proxy.seq
    proxy.plan = FaultPlan()
    final = _start(tree.root, bucket, env)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    last = _since(proxy, mark)
    again = [e for e in last if e.type in SENDS and e.key in done_at_kill]
    assert not again, f"final run sent finished files again: {again[:5]}"
    resent = [e for e in last if e.type == "UploadPart" and (e.upload_id, e.part_number) in parts_at_kill]
    assert not resent, f"final run sent completed parts again: {resent[:5]}"
    # an upload open at a kill and completed later was resumed by a rerun, not started over
    completed = {e.upload_id for e in proxy.log if e.type == "CompleteMultipartUpload" and e.status == 200}
    resumed = {u for u, _ in parts_at_kill} & completed
    assert resumed, "no journaled multipart upload was resumed and completed"
    assert_all_uploaded(s3env, bucket, "k/", tree)
    assert not list((state_dir / "journals").glob("*.sqlite")), "the journal was not cleaned up"


@pytest.mark.e2e
def test_sigkill_three_times_then_resume(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy, state_dir: Path,
                                        bucket: str) -> None:
    tree = make_tree(tmp_path / "src", 60, 16 * MIB, large=3, seed=7)
    _crash_and_resume(tmp_path, s3env, faultproxy, state_dir, bucket, tree, seed=random.randrange(1000))


@pytest.mark.slow
@pytest.mark.e2e
def test_sigkill_three_times_then_resume_full_scale(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy,
                                                   state_dir: Path, big_bucket: str) -> None:
    tree = make_tree(tmp_path / "src", 2000, 40 * MIB, large=40, seed=8)
    _crash_and_resume(tmp_path, s3env, faultproxy, state_dir, big_bucket, tree, seed=random.randrange(1000))
