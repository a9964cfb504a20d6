"""Ctrl-C during a multipart upload: exit 130 and never a partial object. With --no-resume the
multipart upload is aborted (ListMultipartUploads empty); by default it is kept for the resume
journal, and the rerun of the same command completes it from the missing parts."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, run_cli

MIB = 2**20


def _part_recorded(state_dir: Path) -> bool:
    """The resume journal holds a completed part (PartDone is committed at once)."""
    for journal in (state_dir / "journals").glob("*.sqlite"):
        try:
            db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
            try:
                if db.execute("SELECT 1 FROM parts LIMIT 1").fetchone():
                    return True
            finally:
                db.close()
        except sqlite3.Error:
            continue  # not created yet
    return False


def _interrupted_run(s3env: S3Env, bucket: str, env: dict[str, str], src: Path, proxy: FaultProxy,
                     *extra: str, state_dir: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Ctrl-C once a part is done: as the client's journal recorded it (``state_dir``), else as the
    proxy saw it answered. (The proxy's log alone raced the client: a part the server had answered
    but the client had not yet handled was dropped by the stop, and the journal held none.)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/big.bin", "--part-size", "5MiB",
         "--no-progress", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            _part_recorded(state_dir) if state_dir is not None
            else any(e.type == "UploadPart" and e.status == 200 for e in proxy.log)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.e2e
@pytest.mark.parametrize("resume", [False, True], ids=["no-resume", "resume"])
def test_sigint_mid_multipart(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, resume: bool) -> None:
    generate(tmp_path / "src", count=1, size_bytes=40 * MIB, seed=9)
    src = next((tmp_path / "src").iterdir())
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"UploadPart": 0.5}))  # slow parts: time to interrupt
    proxy.start()
    try:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_MAX_PARTS_IN_FLIGHT": "2"}
        r = _interrupted_run(s3env, bucket, env, src, proxy, *([] if resume else ["--no-resume"]),
                             state_dir=state_dir if resume else None)
        assert r.returncode == 130, r.stderr.decode()
        assert "Traceback" not in r.stderr.decode()
        client = s3env.boto()
        assert "Contents" not in client.list_objects_v2(Bucket=bucket)  # never a partial object
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if not resume:
            assert uploads == []  # aborted
            return
        assert len(uploads) == 1 and "rerun the same command" in r.stderr.decode()
        [journal] = (state_dir / "journals").glob("*.sqlite")
        with sqlite3.connect(journal) as db:  # the parts the journal recorded as completed
            sent_before = {n for (n,) in db.execute("SELECT part_number FROM parts")}
        assert sent_before
        proxy.plan = FaultPlan()
        proxy.log.clear()
        r2 = run_cli(["upload", str(src), f"s3://{bucket}/big.bin", "--part-size", "5MiB", "--no-progress"], env)
        assert r2.returncode == 0, r2.stderr.decode()
        resent = {e.part_number for e in proxy.log if e.type == "UploadPart"} & sent_before
        assert not resent  # the rerun sent only the missing parts
        body = client.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(src.read_bytes()).digest()
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        proxy.stop()
