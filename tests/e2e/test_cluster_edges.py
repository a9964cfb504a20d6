"""What used to stay on the coordinator of ``--cluster``, now on the workers: ``sync --checksum``'s
reads (the MD5 and multipart ETags) and the ``--follow-symlinks`` walk."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from s3pump import sync  # noqa: E402
from s3pump.jobs.upload import upload  # noqa: E402
from tests.conftest import S3Env, list_all  # noqa: E402
from tests.e2e.localcluster import local_cluster_client  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MIB = 1024 * 1024


def objects(s3env: S3Env, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    return {k[len(prefix):]: (o["Size"], o["ETag"]) for k, o in list_all(s3env.boto(), bucket, prefix).items()}


@pytest.fixture(scope="module")
def client(s3env: S3Env) -> Iterator[object]:
    with local_cluster_client(s3env) as c:
        yield c


def test_sync_checksum_on_the_cluster_reads_the_files_on_the_workers(
        s3env: S3Env, bucket: str, tmp_path: Path, client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two prefixes hold the same upload; then files change content but not size or mtime (only
    ``--checksum`` sees it, a multipart one among them), and new files appear. ``sync --checksum``
    in one process and on ``local:2``: the same uploads and objects. On the cluster the coordinator
    reads no file (its ``file_digest`` fails the test); the hash tasks ran in the workers'
    processes (their PIDs, not this one's) and read every file."""
    import s3pump.etags as etags
    import s3pump.plan.syncexamine as planner

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    rng = random.Random(31)
    root = tmp_path / "tree"
    files = []
    for i in range(40):
        p = root / f"d{i % 3}" / f"f{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randrange(1, 5000)))
        files.append(p)
    big = root / "big.bin"
    big.write_bytes(rng.randbytes(6 * MIB + 5))
    config = s3env.config(multipart_threshold_bytes=5 * MIB, part_size_bytes=5 * MIB)
    for prefix in ("a/", "b/"):
        assert upload([root], f"s3://{bucket}/{prefix}", config).files_done == 41
    for p in [*files[::8], big]:  # same size, same mtime, other bytes
        st = p.stat()
        data = bytearray(p.read_bytes())
        data[0] ^= 0xFF
        p.write_bytes(bytes(data))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    for i in range(3):
        (root / f"new{i}.txt").write_text(f"new {i}")
    one = sync(root, f"s3://{bucket}/a/", config, mode="checksum", hash_cache=False)

    def no_reads(*a: object, **k: object) -> None:
        raise AssertionError("the coordinator read a file: hashing belongs on the workers")

    monkeypatch.setattr(etags, "file_digest", no_reads)
    monkeypatch.setattr(planner, "file_digest", no_reads)
    two = sync(root, f"s3://{bucket}/b/", config, mode="checksum", hash_cache=False, cluster=client)
    assert one.ok and two.ok, two.failures
    assert one.planned_uploads == two.planned_uploads == 5 + 1 + 3 and two.files_done == 9
    assert two.files_skipped == one.files_skipped == 35
    assert objects(s3env, bucket, "b/") == objects(s3env, bucket, "a/")
    hashed = two.cluster["hash"]
    assert hashed["on"] == "workers" and hashed["files"] == 44 and hashed["failed_tasks"] == 0
    assert hashed["pids"] and os.getpid() not in hashed["pids"]
    workers = client.scheduler_info()["workers"]  # type: ignore[attr-defined]
    assert set(hashed["per_worker"]) <= set(workers)
    assert set(hashed["pids"]) <= set(client.run(os.getpid).values())  # type: ignore[attr-defined]
    assert two.files_hashed == 44 and two.bytes_hashed == one.bytes_hashed
    # the dashboard groups the run's tasks by kind (Dask's task prefixes)
    prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))  # type: ignore[attr-defined]
    assert {"s3pump-walk", "s3pump-hash", "s3pump-sync-shard"} <= set(prefixes), prefixes


def test_follow_symlinks_on_the_cluster_walks_what_one_process_walks(
        s3env: S3Env, bucket: str, tmp_path: Path, client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """``upload --follow-symlinks`` of a tree with a link to a directory that sorts before it (the
    link's path wins, the real directory is then the "loop", as in one process), a link to a sibling
    directory after it, a loop to an ancestor, a link to a directory outside the tree, a link to a
    file and a dangling one: on ``local:2`` the same objects, the same failed paths and skipped entries
    as one process. The coordinator scans no directory's files (its ``_scan`` fails the test): the
    workers did, in scan tasks."""
    from s3pump.sources import walk as walk_module

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("S3PUMP_WALK_TASK_ENTRIES", "3")
    root, outside = tmp_path / "tree", tmp_path / "outside"
    for d, n in (("a", 3), ("z", 2), ("c/deep", 2), ("c/deeper/x", 1)):
        (root / d).mkdir(parents=True)
        for i in range(n):
            (root / d / f"f{i}.txt").write_text(f"{d} {i}\n" * (i + 1))
    (outside / "o").mkdir(parents=True)
    (outside / "o" / "out.txt").write_text("outside")
    (root / "0link").symlink_to("z")  # claims z's directory before z itself is listed
    (root / "b").symlink_to("a")  # a second way to a: a loop
    (root / "c" / "up").symlink_to("..")  # to the root: a loop
    (root / "c" / "out").symlink_to(outside)  # outside the tree: followed
    (root / "flink.txt").symlink_to(root / "a" / "f0.txt")
    (root / "dangling").symlink_to(root / "nowhere")
    config = s3env.config(follow_symlinks=True)
    seen: dict[str, set[tuple[str, str]]] = {"one": set(), "two": set()}

    def skips(name: str) -> object:
        return lambda e: seen[name].add((e.path, e.kind)) if type(e).__name__ == "EntrySkipped" else None

    single = upload([root], f"s3://{bucket}/one/", config, subscribers=[skips("one")],
                    failed_list=tmp_path / "f1.jsonl")

    def no_scan(*a: object, **k: object) -> None:
        raise AssertionError("the coordinator scanned a directory's files: that belongs on the workers")

    monkeypatch.setattr(walk_module, "_scan", no_scan)
    report = upload([root], f"s3://{bucket}/two/", config, cluster=client, subscribers=[skips("two")],
                    failed_list=tmp_path / "f2.jsonl", cluster_options={"shard_files": 4})
    one, two = objects(s3env, bucket, "one/"), objects(s3env, bucket, "two/")
    assert two == one
    assert {"0link/f0.txt", "a/f2.txt", "c/out/o/out.txt", "flink.txt", "c/deeper/x/f0.txt"} <= set(one)
    assert not any(k.startswith(("z/", "b/", "c/up/")) for k in one)
    failed = {f.source: f.error for f in single.failed}
    assert set(failed) == {str(root / "z"), str(root / "b"), str(root / "c" / "up")}
    assert {f.source: f.error for f in report.failed} == failed
    assert seen["two"] == seen["one"] == {(str(root / "dangling"), "broken symlink")}
    walk = report.cluster["walk"]
    assert walk["on"] == "workers" and walk["files"] == len(two) and walk["tasks"] >= 3
