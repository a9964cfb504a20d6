"""A tree that changes under the walk: a directory or a file the walk listed is replaced by a
symbolic link to outside the tree while the run is under way (``mv src/z z.old; ln -s /elsewhere
src/z``). Without ``--follow-symlinks`` no byte from outside the tree may reach the server, not even
in a request that is later undone (an object deleted again, a multipart upload aborted).

Deterministic: ``walkgate/sitecustomize.py`` (on the CLI's PYTHONPATH) makes the walk (in the CLI
process, or in a ``--cluster`` worker) stop once it has listed the root, before it looks at the entries,
until the test has swapped the entry: the old walk and the new one are gated at the same point. Every request goes
through a pass-through proxy that looks for the marker (the only content of the files outside the
tree) in every request body, so a transient upload is seen as well as a lasting one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from s3pump.testing.faultproxy import FaultProxy
from tests.conftest import S3Env, list_all

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MIB = 1024 * 1024
MARKER = b"OUTSIDE-THE-TREE-MARKER-7f3c9a;"
MULTIPART = {"S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}


class _Watching(FaultProxy):
    """Forwards everything; remembers the requests whose body holds the marker."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.leaks: list[str] = []

    async def _forward(self, head: bytes, body: bytes, *args: Any, **kwargs: Any) -> Any:
        if MARKER in body:
            self.leaks.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
        return await super()._forward(head, body, *args, **kwargs)


@pytest.fixture
def proxy(s3env: S3Env) -> Any:
    p = _Watching(s3env.endpoint_url)
    p.start()
    try:
        yield p
    finally:
        p.stop()


def _marker_bytes(size: int) -> bytes:
    """``size`` bytes of markers: any window of a request body (aws-chunked or not) holds one whole."""
    return (MARKER * (size // len(MARKER) + 1))[:size]


def make_trees(tmp_path: Path) -> tuple[Path, Path]:
    """``src`` (files at the top, and in ``z/`` and the nested ``y/w/``: each a small one and a multipart
    one) and ``outside`` (files named like ``z``'s and others, all markers)."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "z").mkdir(parents=True)
    (src / "y" / "w").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"inside a\n")
    (src / "big.bin").write_bytes(os.urandom(6 * MIB + 123))
    (src / "z" / "z1.txt").write_bytes(b"inside z1\n")
    (src / "z" / "zbig.bin").write_bytes(os.urandom(6 * MIB + 7))
    (src / "y" / "w" / "w1.txt").write_bytes(b"inside w1\n")
    (src / "y" / "w" / "wbig.bin").write_bytes(os.urandom(6 * MIB + 123))
    outside.mkdir()
    (outside / "z1.txt").write_bytes(_marker_bytes(100))
    (outside / "secret.txt").write_bytes(_marker_bytes(4000))
    (outside / "zbig.bin").write_bytes(_marker_bytes(6 * MIB + 7))
    (outside / "marker-small").write_bytes(_marker_bytes(1000))
    (outside / "marker-big").write_bytes(_marker_bytes(6 * MIB + 123))
    return src, outside


def swap_dir(src: Path, outside: Path) -> None:
    (src / "z").rename(src.parent / "z.old")
    os.symlink(outside, src / "z")


def swap_files(src: Path, outside: Path) -> None:
    for name, target in (("w1.txt", "marker-small"), ("wbig.bin", "marker-big")):
        (src / "y" / "w" / name).rename(src.parent / f"{name}.old")
        os.symlink(outside / target, src / "y" / "w" / name)


def run_with_swap(args: list[str], env: dict[str, str], gate: Path, swap: Any,
                  root: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI; once its walk has listed ``root`` (default: its root, ``args[1]``; the gate's
    ``.listed`` file, see ``walkgate/sitecustomize.py``), ``swap()``, then let the walk go on (``.go``)."""
    site = str(Path(__file__).parent / "walkgate")
    env = {**env, "S3PUMP_TEST_GATE": str(gate), "S3PUMP_TEST_GATE_ROOT": str(root or args[1]),
           "PYTHONPATH": os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listed = Path(f"{gate}.listed")
    deadline = time.monotonic() + 120
    while not listed.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate(timeout=60)
            pytest.fail(f"the walk never reached the gate (exit {proc.returncode}): {err.decode()}")
        time.sleep(0.02)
    swap()
    Path(f"{gate}.go").touch()
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def no_marker_anywhere(s3env: S3Env, bucket: str, proxy: _Watching) -> dict[str, bytes]:
    """Assert that no request carried the marker and no object holds it; return key -> bytes."""
    assert proxy.leaks == [], f"bytes from outside the tree were sent: {proxy.leaks}"
    client = s3env.boto()
    objects = {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in list_all(client, bucket)}
    assert not [k for k, body in objects.items() if MARKER in body]
    return objects


CASES = {
    "upload": (["upload"], False),
    "sync": (["sync"], False),
    "upload-cluster": (["upload", "--cluster", "local:2"], True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_directory_swapped_for_a_link_during_the_walk_is_not_followed(
        case: str, s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, proxy: _Watching) -> None:
    """``z/`` is listed as a directory, then replaced by a link to ``outside/`` before the walk enters
    it: nothing of ``outside`` is sent, ``z`` is reported failed (exit 1), the rest is uploaded."""
    if CASES[case][1]:
        pytest.importorskip("distributed")
    src, outside = make_trees(tmp_path)
    env = {**s3env.env(state_dir), **MULTIPART, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    verb, *opts = CASES[case][0]
    r = run_with_swap([verb, str(src), f"s3://{bucket}/p/", *opts, "--no-progress"], env, tmp_path / "gate",
                      lambda: swap_dir(src, outside))
    err = r.stderr.decode()
    print(err)
    assert r.returncode == 1, err
    assert "Traceback" not in err
    assert "z: replaced by a symbolic link" in err, err
    objects = no_marker_anywhere(s3env, bucket, proxy)
    assert set(objects) == {"p/a.txt", "p/big.bin", "p/y/w/w1.txt", "p/y/w/wbig.bin"}
    assert objects["p/a.txt"] == b"inside a\n"


def test_sync_delete_does_not_act_on_a_directory_swapped_for_a_link(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, proxy: _Watching) -> None:
    """``sync --delete`` after ``z/`` was uploaded, with ``z`` swapped for a link to another directory
    during the walk: ``z``'s objects are neither deleted nor replaced by the other directory's files."""
    src, outside = make_trees(tmp_path)
    env = {**s3env.env(state_dir), **MULTIPART, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    first = subprocess.run([sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/p/", "--no-progress"],
                           env=env, capture_output=True, timeout=240)
    assert first.returncode == 0, first.stderr.decode()
    before = no_marker_anywhere(s3env, bucket, proxy)
    (src / "a.txt").write_bytes(b"inside a, changed\n")
    r = run_with_swap(["sync", str(src), f"s3://{bucket}/p/", "--delete", "--no-progress"], env,
                      tmp_path / "gate", lambda: swap_dir(src, outside))
    err = r.stderr.decode()
    print(err)
    assert r.returncode == 1, err
    assert "z: replaced by a symbolic link" in err and "2 deletes withheld" in err, err
    after = no_marker_anywhere(s3env, bucket, proxy)
    assert set(after) == set(before) == {"p/a.txt", "p/big.bin", "p/y/w/w1.txt", "p/y/w/wbig.bin", "p/z/z1.txt",
                                         "p/z/zbig.bin"}
    assert after["p/z/z1.txt"] == before["p/z/z1.txt"] == b"inside z1\n"
    assert after["p/a.txt"] == b"inside a, changed\n"  # the rest of the tree was synced


@pytest.mark.parametrize("case", list(CASES))
def test_file_swapped_for_a_link_after_the_walk_is_not_read(
        case: str, s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, proxy: _Watching) -> None:
    """``y/w/w1.txt`` (a single PUT) and ``y/w/wbig.bin`` (multipart) are listed, then replaced by links to
    marker files outside the tree: neither marker is sent, even in a request later undone; both fail
    (exit 1). (Below the root: a ``--cluster`` run's workers check a sample of the first shard's files,
    the root's, before any upload; these are not among them, so the workers' engines meet the links.)"""
    if CASES[case][1]:
        pytest.importorskip("distributed")
    src, outside = make_trees(tmp_path)
    env = {**s3env.env(state_dir), **MULTIPART, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    verb, *opts = CASES[case][0]
    r = run_with_swap([verb, str(src), f"s3://{bucket}/p/", *opts, "--no-progress"],
                      {**env, "S3PUMP_SHARD_FILES": "1"}, tmp_path / "gate", lambda: swap_files(src, outside),
                      root=src / "y" / "w")
    err = r.stderr.decode()
    print(err)
    assert "Traceback" not in err
    objects = no_marker_anywhere(s3env, bucket, proxy)
    assert r.returncode == 1, err
    assert "w1.txt: replaced by a symbolic link" in err and "wbig.bin: replaced by a symbolic link" in err, err
    assert set(objects) == {"p/a.txt", "p/big.bin", "p/z/z1.txt", "p/z/zbig.bin"}


def test_follow_symlinks_still_follows_a_directory_link(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """With ``--follow-symlinks`` a link to a directory (there from the start) is walked, as before."""
    src, outside = make_trees(tmp_path)
    swap_dir(src, outside)
    r = subprocess.run([sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/p/", "--follow-symlinks",
                        "--no-progress"], env={**s3env.env(state_dir), **MULTIPART}, capture_output=True, timeout=240)
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    assert {"p/z/secret.txt", "p/z/z1.txt", "p/z/zbig.bin", "p/a.txt"} <= set(list_all(client, bucket))
