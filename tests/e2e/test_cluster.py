"""``--cluster``: upload on a Dask LocalCluster of worker processes against the test SeaweedFS.

Each test asserts what the server holds at the end (keys, sizes, ETags, no multipart upload left)
and, where the issue asks, what the coordinator sent to the workers (no secret) and how often each
object was written (through the request log of a pass-through fault proxy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from s3pump.errors import WorkerMismatchError  # noqa: E402
from s3pump.jobs.upload import upload  # noqa: E402
from s3pump.testing.faultproxy import FaultPlan, FaultProxy  # noqa: E402
from tests.conftest import S3Env, list_all, run_cli  # noqa: E402
from tests.e2e.localcluster import local_cluster_client, quiet_local_cluster  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MIB = 1024 * 1024
MULTIPART = {"S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}


def make_tree(root: Path, small: int, large_mib: tuple[int, ...] = (), seed: int = 14) -> dict[str, Path]:
    """``small`` files of 0-3 KiB in 20 directories, and one file per ``large_mib`` entry of that
    many MiB (multipart above 5 MiB)."""
    rng = random.Random(seed)
    files: dict[str, Path] = {}
    for i in range(small):
        p = root / f"d{i % 20:02d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randrange(0, 3072)))
        files[p.relative_to(root).as_posix()] = p
    for j, mib in enumerate(large_mib):
        p = root / "big" / f"large{j}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(mib * MIB + 12345))
        files[p.relative_to(root).as_posix()] = p
    return files


def objects(s3env: S3Env, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (without ``prefix``) -> (size, ETag)."""
    return {k[len(prefix):]: (o["Size"], o["ETag"]) for k, o in list_all(s3env.boto(), bucket, prefix).items()}


def open_uploads(s3env: S3Env, bucket: str) -> list[dict]:
    return s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def summary(stdout: bytes) -> dict:
    """The ``--json`` summary (the last line)."""
    return json.loads(stdout.decode().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def client(s3env: S3Env) -> Iterator[object]:
    """A LocalCluster of 2 worker processes (one thread each) whose environment holds the
    credentials (the coordinator never sends them); its Client."""
    with local_cluster_client(s3env) as c:
        yield c


@pytest.mark.parametrize("small, shard_files", [
    (1200, 200),
    pytest.param(4000, 400, marks=pytest.mark.slow),
], ids=["1203-files", "4003-files"])
def test_same_objects_as_single_process(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path,
                                        small: int, shard_files: int) -> None:
    """A tree of small files and 3 multipart ones, through the real CLI on ``local:2``: the same
    keys, sizes and ETags as a single-process upload; both workers did shards."""
    root = tmp_path / "tree"
    files = make_tree(root, small, (6, 7, 11))
    total = small + 3
    env = {**s3env.env(state_dir), **MULTIPART, "S3PUMP_SHARD_FILES": str(shard_files)}
    single = run_cli(["upload", str(root), f"s3://{bucket}/one/", "--json"], env)
    assert single.returncode == 0, single.stderr.decode()
    r = run_cli(["upload", str(root), f"s3://{bucket}/two/", "--cluster", "local:2", "--json"], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "Traceback" not in err and " INFO " not in err, err
    one, two = objects(s3env, bucket, "one/"), objects(s3env, bucket, "two/")
    assert len(one) == len(files) == total
    assert two == one
    assert sum(1 for _, etag in two.values() if "-" in etag) == 3  # the multipart ones, ETags equal
    s = summary(r.stdout)
    assert s["files_done"] == total and s["files_failed"] == 0
    c = s["cluster"]
    assert c["workers"] == 2 and c["shards_failed"] == 0
    assert c["shards_done"] == c["shards_planned"] >= small // shard_files  # the large files among them
    assert len(c["per_worker"]) == 2 and all(w["files"] > 0 for w in c["per_worker"])
    assert sum(w["files"] for w in c["per_worker"]) == total
    done_lines = [json.loads(x) for x in r.stdout.decode().splitlines()[:-1]]
    assert Counter(x["event"] for x in done_lines)["done"] == total  # one --json line per file, as today
    assert "cluster: 2 workers" in err and err.count("  worker tls://127.0.0.1:") == 2  # per-worker rates
    assert c["walk"]["on"] == "workers" and c["walk"]["files"] == total  # the workers walked
    assert f"  walk on the workers: {c['walk']['tasks']:,} tasks" in err and f"found {total:,} files" in err
    assert open_uploads(s3env, bucket) == []


# ---------------------------------------------------------------- the walk on the workers
def test_the_walk_runs_on_the_workers_and_uploads_what_one_process_does(
        s3env: S3Env, bucket: str, tmp_path: Path, client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested tree (4 levels, a directory cut into slices, empty directories, symlinks to a file, to a
    directory and dangling, a FIFO) plus a second root, ordered filters and a multipart file: the same
    keys, sizes and ETags, and the same skipped entries, as a single-process upload. The coordinator
    lists no directory (its ``_list_dir`` fails the test): the workers did the walk (the result counts
    their walk tasks), the key-clash pre-pass of the two roots included."""
    from s3pump.sources import walk as walk_module
    from tests.unit.test_walk_parts import nested_tree

    root, other = tmp_path / "tree", tmp_path / "other"
    root.mkdir()
    nested_tree(root)
    (root / "l1-1" / "l2-2" / "big.bin").write_bytes(random.Random(3).randbytes(6 * MIB + 777))
    (other / "extra").mkdir(parents=True)
    (other / "extra" / "e.txt").write_text("e")
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("S3PUMP_WALK_TASK_ENTRIES", "10")
    config = s3env.config(multipart_threshold_bytes=5 * MIB, part_size_bytes=5 * MIB)
    rules = [("exclude", "*.tmp"), ("include", "wide/w1*"), ("exclude", "l1-2/*")]
    seen: dict[str, set[tuple[str, str]]] = {"one": set(), "two": set()}

    def skips(name: str) -> object:
        return lambda e: seen[name].add((e.path, e.kind)) if type(e).__name__ == "EntrySkipped" else None

    single = upload([root, other], f"s3://{bucket}/one/", config, filters=rules, subscribers=[skips("one")],
                    failed_list=tmp_path / "f1.jsonl")

    def no_listing(path: str) -> list:
        raise AssertionError(f"the coordinator listed {path}: the walk belongs on the workers")

    monkeypatch.setattr(walk_module, "_list_dir", no_listing)
    report = upload([root, other], f"s3://{bucket}/two/", config, filters=rules, cluster=client,
                    subscribers=[skips("two")], failed_list=tmp_path / "f2.jsonl", cluster_options={"shard_files": 7})
    assert single.ok and report.ok, report.failures
    one, two = objects(s3env, bucket, "one/"), objects(s3env, bucket, "two/")
    assert two == one and len(one) == single.files_done == report.files_done > 30
    assert "wide/w03.txt" not in one and "wide/w10.txt" in one and "wide/w12.tmp" in one  # the ordered rules
    assert not any(k.startswith("l1-2/") for k in one) and "extra/e.txt" in one
    assert sum(1 for _, etag in two.values() if "-" in etag) == 1
    assert seen["two"] == seen["one"] and {k for _, k in seen["one"]} == {"symlink", "fifo"}
    walk = report.cluster["walk"]
    print(f"walk {walk}; single {single.elapsed_s:.1f} s, cluster {report.elapsed_s:.1f} s, "
          f"{report.cluster['shards_done']} shards")
    assert walk["on"] == "workers" and walk["files"] == report.files_done and walk["failed"] == 0
    assert walk["tasks"] >= 10 and sum(walk["per_worker"].values()) == walk["tasks"]
    assert set(walk["per_worker"]) <= set(client.scheduler_info()["workers"])  # type: ignore[attr-defined]
    assert open_uploads(s3env, bucket) == []


def test_two_roots_that_clash_are_refused_by_the_walk_on_the_workers(
        s3env: S3Env, bucket: str, tmp_path: Path, client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key-clash pre-pass holds when the workers walk: nothing is uploaded (exit 2's error)."""
    from s3pump.errors import KeyClashError
    from s3pump.sources import walk as walk_module

    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "same.txt").write_text(name)
        (tmp_path / name / f"only-{name}.txt").write_text(name)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(walk_module, "_list_dir", lambda path: pytest.fail(f"the coordinator listed {path}"))
    with pytest.raises(KeyClashError, match=r"sub/same.txt: .*/a/sub/same.txt and .*/b/sub/same.txt"):
        upload([tmp_path / "a", tmp_path / "b"], f"s3://{bucket}/clash/", s3env.config(), cluster=client,
               failed_list=tmp_path / "f.jsonl")
    assert objects(s3env, bucket, "clash/") == {}


@pytest.mark.timing  # progress must arrive while a shard runs: run serially
def test_progress_moves_per_file_while_shards_run(s3env: S3Env, bucket: str, tmp_path: Path, client: object,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 80 small files at 10 requests/s per worker (~8 s each): the coordinator's bus carries
    ShardProgress with part of a shard's files before any shard's result (the progress view moves
    per file), and the files' own events still come once each, with the results."""
    from s3pump.ui.progress import Counts

    root = tmp_path / "tree"
    make_tree(root, 160)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    seen: list[tuple[str, int]] = []
    counts = Counts()
    shown: list[int] = []

    def watch(event: object) -> None:
        name = type(event).__name__
        if name == "ShardProgress":
            seen.append(("progress", event.files))  # type: ignore[attr-defined]
        elif name == "FileDone":
            seen.append(("done", 0))
        elif name == "ShardSettled":
            seen.append(("settled", 0))
        if counts.update(event):  # type: ignore[arg-type]
            shown.append(counts.files)

    # 20 requests/s over the cluster, 10 per worker: a shard of 80 files takes ~8 s however the
    # bandwidth cap paces such small bodies
    report = upload([root], f"s3://{bucket}/g/", s3env.config(max_rps=20.0), cluster=client, subscribers=[watch],
                    failed_list=tmp_path / "f.jsonl",
                    cluster_options={"shard_files": 80, "worker_bwlimit_bps": 16 * 1024})
    assert report.ok and report.files_done == 160
    first_done = next(i for i, (kind, _) in enumerate(seen) if kind == "done")
    early = [n for kind, n in seen[:first_done] if kind == "progress"]
    # part of a shard, before any result (a shard may also report all 80 just before its result comes)
    assert any(0 < n < 80 for n in early), seen[:first_done]
    assert sum(1 for kind, _ in seen if kind == "done") == 160  # each file's event once
    # each shard's files are followed by its ShardSettled (the journal commits them then)
    assert [kind for kind, _ in seen if kind != "progress"] == (["done"] * 80 + ["settled"]) * 2
    assert shown[-1] == 160 and max(shown) == 160  # the view's count never runs ahead of the files
    assert len(objects(s3env, bucket, "g/")) == 160


def test_no_secret_in_any_task_payload(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path,
                                       client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator's config holds the secret; nothing it sends to the cluster does."""
    root = tmp_path / "tree"
    make_tree(root, 300, (6,))
    sent: list[bytes] = []
    for name in ("submit", "run", "register_plugin"):
        original = getattr(client, name)

        def spy(*args: object, _original: object = original, **kwargs: object) -> object:
            sent.append(pickle.dumps((args, kwargs)))
            return _original(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(client, name, spy)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    config = s3env.config(multipart_threshold_bytes=5 * MIB, part_size_bytes=5 * MIB)
    assert config.secret_access_key
    report = upload([root], f"s3://{bucket}/p/", config, cluster=client, failed_list=tmp_path / "failed.jsonl",
                    cluster_options={"shard_files": 100})
    assert report.ok and report.files_done == 301
    assert len(sent) >= 5  # the path check, the plugin and at least 3 shards
    secret = config.secret_access_key.encode()
    assert all(secret not in blob for blob in sent)
    assert any(b"f00000.bin" in blob for blob in sent)  # the payloads were seen: they hold the paths
    assert len(objects(s3env, bucket, "p/")) == 301


def test_unreadable_file_in_failed_list_exit_1(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    files = make_tree(root, 100, (6,))
    locked = [files["d03/f00003.bin"], files["big/large0.bin"]]
    for p in locked:
        p.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads mode-000 files; drop the capabilities that allow it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search"]
    failed = tmp_path / "failed.jsonl"
    env = {**s3env.env(state_dir), **MULTIPART, "S3PUMP_SHARD_FILES": "25"}
    r = subprocess.run([*prefix, sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/u/",
                        "--cluster", "local:2", "--no-progress", "--failed-list", str(failed)],
                       env=env, capture_output=True, timeout=240)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "Traceback" not in err and " INFO " not in err, err  # s3pump's lines only, not Dask's logs
    assert not [x for x in err.splitlines() if "Warning" in x or "warn" in x], err
    assert len([x for x in err.splitlines() if x.startswith(f"failed {root}/")]) == 2, err
    listed = sorted(json.loads(x)["source"] for x in failed.read_text().splitlines())
    assert listed == sorted(map(str, locked))
    got = objects(s3env, bucket, "u/")
    assert set(got) == set(files) - {"d03/f00003.bin", "big/large0.bin"}
    assert open_uploads(s3env, bucket) == []


@pytest.mark.slow  # a scheduler and two nannies started by the test: ~45 s on the loaded 2-core machine
def test_worker_seeing_another_tree_exits_2_before_any_upload(s3env: S3Env, bucket: str, state_dir: Path,
                                                              tmp_path: Path) -> None:
    """Worker 2 mounts a copy of the tree (S3PUMP_CLUSTER_PATH_MAP) whose files have other mtimes,
    as a node with a stale copy would: the CLI exits 2 naming it, and the bucket stays empty."""
    root = tmp_path / "tree"
    make_tree(root, 120)
    stale = tmp_path / "stale"
    shutil.copytree(root, stale)  # same sizes, new mtimes
    for p in stale.rglob("*.bin"):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns - 10**9))
    env = {**s3env.env(state_dir), "S3PUMP_SHARD_FILES": "50"}
    with quiet_local_cluster(1, {k: v for k, v in env.items() if k.startswith("AWS_")}) as cluster:
        other_env = {**{k: v for k, v in env.items() if k.startswith("AWS_")},
                     "S3PUMP_CLUSTER_PATH_MAP": f"{root}={stale}"}

        async def start_other() -> object:
            return await distributed.Nanny(cluster.scheduler_address, nthreads=1, env=other_env)

        nanny = cluster.sync(start_other)
        try:
            with distributed.Client(cluster) as c:
                c.wait_for_workers(2, timeout=60)
            r = run_cli(["upload", str(root), f"s3://{bucket}/x/", "--cluster", cluster.scheduler_address,
                         "--no-progress"], env, timeout=120)
        finally:
            cluster.sync(nanny.close)  # type: ignore[attr-defined]
    err = r.stderr.decode()
    assert r.returncode == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    # the first shard's sample of files, or the walk's check of each directory (the copy's are others)
    assert "worker tcp://" in lines[0] and str(root) in lines[0], lines[0]
    assert "modification time" in lines[0] or "is another directory here" in lines[0], lines[0]
    assert objects(s3env, bucket, "x/") == {}
    assert open_uploads(s3env, bucket) == []


def test_mismatch_error_from_the_api(s3env: S3Env, bucket: str, tmp_path: Path, client: object,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python API raises WorkerMismatchError (exit 2) when the tree vanished under the workers' feet."""
    root = tmp_path / "tree"
    files = make_tree(root, 30)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))

    def vanish(event: object) -> None:  # the coordinator walked; now the files change size
        if type(event).__name__ == "Discovered" and getattr(event, "final", False):
            for p in files.values():
                p.write_bytes(p.read_bytes() + b"!")

    with pytest.raises(WorkerMismatchError, match=r"worker tcp://\S+ sees .* size"):
        upload([root], f"s3://{bucket}/m/", s3env.config(), cluster=client, subscribers=[vanish],
               failed_list=tmp_path / "f.jsonl")
    assert objects(s3env, bucket, "m/") == {}


def test_sync_delete_refuses_workers_that_see_an_empty_mount_point(s3env: S3Env, bucket: str, tmp_path: Path,
                                                                    client: object,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers read the tree at an empty directory (S3PUMP_CLUSTER_PATH_MAP to it: a node where
    the share is not mounted, or a subtree's mount missing): they must not answer "no files", which
    ``sync --delete`` would turn into deleting every object. WorkerMismatchError (exit 2); nothing
    deleted, nothing uploaded. Then with the tree mounted but one subdirectory empty on the workers."""
    from s3pump.jobs.sync import sync

    root = tmp_path / "tree"
    files = make_tree(root, 40)
    past = time.time_ns() - 60 * 10**9  # older than the objects' LastModified (1 s resolution): unchanged
    for p in files.values():
        os.utime(p, ns=(past, past))
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    r = run_cli(["upload", str(root), f"s3://{bucket}/s/", "--no-progress"], s3env.env(tmp_path / "state"))
    assert r.returncode == 0, r.stderr.decode()
    before = objects(s3env, bucket, "s/")
    assert len(before) == 40
    empty = tmp_path / "mnt"
    (empty / "d01").mkdir(parents=True)
    sub = sorted(p for p in root.iterdir() if p.is_dir())[0]
    for mapped in (f"{root}={empty}", f"{sub}={empty / 'd01'}"):  # the root, then one subdirectory
        # in the workers' own environment (a bound method of os.environ would be pickled with a copy of it)
        client.run(exec, f"import os; os.environ['S3PUMP_CLUSTER_PATH_MAP'] = {mapped!r}", {})  # type: ignore[attr-defined]
        try:
            with pytest.raises(WorkerMismatchError, match=r"worker tcp://\S+ sees .* is another directory here"):
                sync(root, f"s3://{bucket}/s/", s3env.config(), delete=True, cluster=client,
                     failed_list=tmp_path / "f.jsonl")
        finally:
            client.run(exec, "import os; os.environ.pop('S3PUMP_CLUSTER_PATH_MAP', None)", {})  # type: ignore[attr-defined]
        assert objects(s3env, bucket, "s/") == before, mapped
    # the same tree seen by the workers: nothing to do, nothing deleted
    report = sync(root, f"s3://{bucket}/s/", s3env.config(), delete=True, cluster=client,
                  failed_list=tmp_path / "f.jsonl")
    assert report.ok and report.files_done == 0 and objects(s3env, bucket, "s/") == before


# ---------------------------------------------------------------- killed processes
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d.name))
    return out


def _worker_pids(coordinator: int) -> list[int]:
    """The Dask worker processes a ``local:N`` coordinator spawned (not multiprocessing's helpers)."""
    pids = []
    for pid in _children(coordinator):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                pids.append(pid)
    return pids


def _open_files(pid: int, directory: Path) -> list[str]:
    """Names of the files in ``directory`` that process ``pid`` has open."""
    names = []
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith(f"{directory}/"):
                    names.append(target[len(str(directory)) + 1:])
    return names


def test_worker_killed_mid_multipart_loses_nothing(s3env: S3Env, bucket: str, state_dir: Path,
                                                   tmp_path: Path) -> None:
    """SIGKILL the worker that is reading a large file whose multipart upload is open: Dask reruns
    its shard on a restarted worker; every object ends byte-identical, none written more than twice
    (that file's upload exactly twice), and the final sweep leaves ListMultipartUploads empty."""
    root = tmp_path / "tree"
    files = make_tree(root, 200, (11, 11, 11))
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(), seed=1)
    proxy.start()
    try:
        env = {**s3env.env(state_dir), **MULTIPART, "AWS_ENDPOINT_URL": proxy.endpoint_url,
               "S3PUMP_SHARD_FILES": "100", "S3PUMP_WORKER_BWLIMIT": "8MiB", "S3PUMP_CLUSTER_FORECAST_AFTER": "2"}
        p = subprocess.Popen([sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/k/",
                              "--cluster", "local:2", "--no-progress"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            victim = None
            while victim is None:  # a worker reading a large file whose multipart upload is open
                assert p.poll() is None and time.monotonic() < deadline, "no multipart upload was seen in progress"
                open_keys = {u["Key"] for u in open_uploads(s3env, bucket)}
                for pid in _worker_pids(p.pid):
                    for name in _open_files(pid, root / "big"):
                        if f"k/big/{name}" in open_keys:
                            victim = (pid, f"big/{name}")
                time.sleep(0.05)
            os.kill(victim[0], signal.SIGKILL)
            _, err_b = p.communicate(timeout=180)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        log = list(proxy.log)
    finally:
        proxy.stop()
    err = err_b.decode()
    assert p.returncode == 0, err
    forecasts = [x for x in err.splitlines() if x.startswith("s3pump: cluster after ")]
    assert len(forecasts) == 1 and "(bound: " in forecasts[0], err  # the model's bound, printed once
    got = list_all(s3env.boto(), bucket, "k/")
    assert set(got) == {f"k/{k}" for k in files}
    for k, path in files.items():
        assert got[f"k/{k}"]["Size"] == path.stat().st_size
    for k in ("big/large0.bin", "big/large1.bin", "big/large2.bin"):
        body = s3env.boto().get_object(Bucket=bucket, Key=f"k/{k}")["Body"].read()
        assert body == files[k].read_bytes()
    writes = Counter(e.key for e in log if e.type in ("PutObject", "CreateMultipartUpload") and e.status == 200)
    assert max(writes.values()) <= 2, writes.most_common(3)
    assert writes[f"k/{victim[1]}"] == 2  # the killed worker's multipart upload was started again
    assert open_uploads(s3env, bucket) == []


@pytest.mark.slow  # a throttled cluster run interrupted, then the wait for its shards: ~25 s on the loaded machine
def test_ctrl_c_cancels_running_shards_and_they_abort_their_uploads(s3env: S3Env, bucket: str, state_dir: Path,
                                                                    tmp_path: Path) -> None:
    """SIGINT to the coordinator while both workers are mid-multipart (one 12 MiB file per shard, at
    1 MiB/s each): exit 130, no object of the files being sent (their shards were cancelled, not let
    finish), and ListMultipartUploads empty at once: the workers cancelled their running shards and
    aborted their uploads themselves (no rerun's sweep needed)."""
    root = tmp_path / "tree"
    files = make_tree(root, 0, (12, 12, 12, 12))
    env = {**s3env.env(state_dir), **MULTIPART, "S3PUMP_SHARD_FILES": "1", "S3PUMP_WORKER_BWLIMIT": "1MiB"}
    p = subprocess.Popen([sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/q/",
                          "--cluster", "local:2", "--no-progress"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        running: set[str] = set()
        while len(running) < 2:  # both workers run a shard
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode() if p.stderr else ""
            time.sleep(0.05)
            running = {u["Key"][len("q/"):] for u in open_uploads(s3env, bucket)}
        p.send_signal(signal.SIGINT)
        _, err_b = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    err = err_b.decode()
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    got = objects(s3env, bucket, "q/")
    assert running <= set(files) and not running & set(got), (got, err)  # cancelled, not let finish
    assert open_uploads(s3env, bucket) == []


def _journal_done(state_dir: Path) -> int:
    journals = list((state_dir / "journals").glob("upload-*.sqlite"))
    if not journals:
        return 0
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(journals[0], timeout=1)) as db:
        return int(db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0])
    return 0


def test_coordinator_killed_then_rerun_redoes_only_missing_shards(s3env: S3Env, bucket: str, state_dir: Path,
                                                                   tmp_path: Path) -> None:
    """Kill the coordinator (and its local workers) once some shards are journaled; the same
    command again submits only shards of the files the journal lacks (counted), and ends complete."""
    root = tmp_path / "tree"
    files = make_tree(root, 300)
    # ~450 KiB at 30 KiB/s per worker: about 7 s, so the journal (which commits finished files once a
    # second) shows 75 done well before the run could end
    env = {**s3env.env(state_dir), "S3PUMP_SHARD_FILES": "25", "S3PUMP_WORKER_BWLIMIT": "30KiB"}
    args = ["upload", str(root), f"s3://{bucket}/c/", "--cluster", "local:2", "--json"]
    p = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _journal_done(state_dir) < 75:
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode() if p.stderr else ""
            time.sleep(0.05)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    done_before = _journal_done(state_dir)
    assert 75 <= done_before < 300
    missing = 300 - done_before
    env.pop("S3PUMP_WORKER_BWLIMIT")
    r = run_cli(args, env, timeout=180)
    assert r.returncode == 0, r.stderr.decode()
    s = summary(r.stdout)
    assert s["files_skipped"] == done_before and s["files_done"] == missing
    assert s["cluster"]["shards_planned"] == -(-missing // 25) < 12  # only the missing files' shards
    assert set(objects(s3env, bucket, "c/")) == set(files)


# ---------------------------------------------------------------- Ctrl-C journals what cancelled shards stored
def _stored(s3env: S3Env, bucket: str, prefix: str, files: dict[str, Path]) -> set[str]:
    """The files whose object under ``prefix`` holds their bytes (a single PUT's ETag is the MD5)."""
    got = list_all(s3env.boto(), bucket, prefix)
    out = set()
    for name, path in files.items():
        o = got.get(prefix + name)
        if o is not None and o["ETag"].strip('"') == hashlib.md5(path.read_bytes()).hexdigest():
            out.add(name)
    return out


def _quiet(proxy: FaultProxy, timeout_s: float = 10) -> None:
    """Wait until every request that reached the proxy has ended (and is logged)."""
    deadline = time.monotonic() + timeout_s
    while len(proxy.entries()) < proxy.seq and time.monotonic() < deadline:
        time.sleep(0.05)


def test_ctrl_c_mid_run_journals_what_the_cancelled_shards_stored(s3env: S3Env, bucket: str, state_dir: Path,
                                                                  tmp_path: Path) -> None:
    """200 small files on ``local:2`` through a proxy that slows each PutObject (0.3 s, 4 in flight
    per worker). SIGINT to the coordinator's process group (a terminal's Ctrl-C: its local workers
    get it too) once 40 PUTs were answered, while both workers run a shard of 25 with PUTs in
    flight: exit 130, and its ``--json`` reports done exactly the files whose objects it stored.
    The rerun (the same journal: its identity is the job, sources, destination and endpoint; run in
    one process) sends a PutObject for exactly the files the first run did not store, each once,
    and the bucket then holds the tree. (Before: the cancelled shards' finished files and the PUTs
    in flight at the cancel were not journaled, and the local workers died of the SIGINT; the rerun
    sent those files again.)"""
    root = tmp_path / "tree"
    files = make_tree(root, 200)
    with FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"PutObject": 0.3})) as proxy:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_SHARD_FILES": "25",
               "S3PUMP_CONCURRENCY": "4"}
        args = ["upload", str(root), f"s3://{bucket}/x/", "--json"]
        p = subprocess.Popen([sys.executable, "-m", "s3pump", *args, "--cluster", "local:2"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while len(proxy.entries(type="PutObject", fault=None)) < 40:
                assert p.poll() is None and time.monotonic() < deadline, "the run ended before the signal"
                time.sleep(0.02)
            os.killpg(p.pid, signal.SIGINT)  # the coordinator and its local workers, as a terminal's Ctrl-C
            out_b, err_b = p.communicate(timeout=90)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        assert p.returncode == 130, err_b.decode()
        _quiet(proxy)
        first = _stored(s3env, bucket, "x/", files)
        assert 40 <= len(first) < 200, len(first)
        reported = {json.loads(x)["key"][len("x/"):] for x in out_b.decode().splitlines()
                    if x.startswith('{"event": "done"')}
        assert reported == first  # every object stored was reported done (and journaled), none other
        mark = proxy.seq
        proxy.plan.delay_s.clear()
        r = run_cli(args, env, timeout=120)  # one process: the same journal
        _quiet(proxy)
        puts = Counter(e.key[len("x/"):] for e in proxy.entries(type="PutObject") if e.seq > mark)
    assert r.returncode == 0, r.stderr.decode()
    assert set(puts) == set(files) - first, (len(puts), len(first), sorted(set(puts) & first)[:5])
    assert max(puts.values()) == 1
    s = summary(r.stdout)
    assert s["files_skipped"] == len(first) and s["files_done"] == 200 - len(first)
    assert _stored(s3env, bucket, "x/", files) == set(files)


# ---------------------------------------------------------------- sync
def test_sync_on_the_cluster_plans_and_uploads_as_single_process(s3env: S3Env, bucket: str, state_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Two prefixes hold the same earlier upload; the tree then gains and changes files. Sync to
    one prefix in a single process and to the other on ``local:2``: the same plan (keys and
    reasons), the same uploads, the same unchanged count and the same objects in the end."""
    root = tmp_path / "tree"
    files = make_tree(root, 300, (6,))
    past = time.time_ns() - 60 * 10**9  # older than any LastModified (1 s resolution) of the uploads below
    for p in files.values():
        os.utime(p, ns=(past, past))
    env = {**s3env.env(state_dir), **MULTIPART, "S3PUMP_SHARD_FILES": "40"}
    for prefix in ("a", "b"):
        r = run_cli(["upload", str(root), f"s3://{bucket}/{prefix}/", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
    time.sleep(1.1)  # LastModified has 1 s resolution: the changes below are newer
    for i in range(0, 300, 10):  # 30 changed sizes
        files[f"d{i % 20:02d}/f{i:05d}.bin"].write_bytes(os.urandom(4000))
    for i in range(300, 360):  # 60 new files
        p = root / "new" / f"n{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(i))

    def plan(stdout: bytes) -> tuple[dict[str, str], set[str], dict]:
        lines = [json.loads(x) for x in stdout.decode().splitlines()]
        planned = {x["key"].split("/", 1)[1]: x["reason"] for x in lines if x.get("event") == "planned"}
        done = {x["key"].split("/", 1)[1] for x in lines if x.get("event") == "done"}
        return planned, done, lines[-1]

    one = run_cli(["sync", str(root), f"s3://{bucket}/a/", "--json"], env)
    two = run_cli(["sync", str(root), f"s3://{bucket}/b/", "--json", "--cluster", "local:2"], env)
    assert one.returncode == 0, one.stderr.decode()
    assert two.returncode == 0, two.stderr.decode()
    plan_a, done_a, sum_a = plan(one.stdout)
    plan_b, done_b, sum_b = plan(two.stdout)
    assert len(plan_a) == 90 and plan_b == plan_a
    assert done_b == done_a == set(plan_a)
    assert sum_b["files_skipped"] == sum_a["files_skipped"] == 271  # unchanged
    assert sum_b["cluster"]["workers"] == 2 and sum_b["cluster"]["shards_done"] >= 3
    assert sum_a.get("cluster") is None
    walk = sum_b["cluster"]["walk"]  # the planner's walk ran on the workers
    assert walk["on"] == "workers" and walk["files"] == 361 and sum(walk["per_worker"].values()) == walk["tasks"]
    assert objects(s3env, bucket, "b/") == objects(s3env, bucket, "a/")
    assert len(objects(s3env, bucket, "a/")) == 361


# ---------------------------------------------------------------- a server at capacity
@pytest.mark.slow  # ~30-60 s on the loaded 2-core machine
def test_two_workers_under_a_capacity_limited_server_keep_slowdown_under_5_percent(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """A server that serves 8 requests at once (20 ms each) and answers SlowDown beyond: two workers
    with ``--concurrency auto`` (adaptive concurrency in each, kept from shard to shard) stay under
    5 % SlowDown answers, and every object arrives."""
    root = tmp_path / "tree"
    files = make_tree(root, 3000)
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(max_in_flight=8, delay_s={"PutObject": 0.02}))
    proxy.start()
    try:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_RETRY_BUDGET": "1000000",
               "S3PUMP_MAX_ATTEMPTS": "100", "S3PUMP_BACKOFF_BASE": "0.02", "S3PUMP_BACKOFF_MAX": "0.2",
               "S3PUMP_SHARD_FILES": "250"}
        r = run_cli(["upload", str(root), f"s3://{bucket}/s/", "--cluster", "local:2", "--concurrency", "auto",
                     "--json"], env, timeout=240)
        puts = [e for e in proxy.log if e.type == "PutObject"]
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr.decode()
    slowdowns = sum(1 for e in puts if e.fault == "capacity")
    s = summary(r.stdout)
    print(f"2 workers, --concurrency auto, capacity 8: SlowDown {slowdowns}/{len(puts)} = "
          f"{slowdowns / len(puts):.1%}; {s['files_done'] / s['elapsed_s']:.0f} files/s")
    assert s["cluster"]["workers"] == 2 and len(s["cluster"]["per_worker"]) == 2
    assert slowdowns / len(puts) < 0.05
    assert set(objects(s3env, bucket, "s/")) == set(files)


# ---------------------------------------------------------------- the extra, --embedded
def test_without_the_dask_extra_the_cli_says_what_to_install(s3env: S3Env, bucket: str, state_dir: Path,
                                                             tmp_path: Path) -> None:
    """The real CLI in an interpreter where ``import distributed`` fails: one line, exit 2, nothing sent."""
    root = tmp_path / "tree"
    make_tree(root, 5)
    code = ("import sys; sys.modules['distributed'] = None; from s3pump.cli import main; "
            f"sys.argv = ['s3pump', 'upload', {str(root)!r}, 's3://{bucket}/n/', '--cluster', 'local:2']; main()")
    r = subprocess.run([sys.executable, "-c", code], env=s3env.env(state_dir), capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.strip().splitlines() == ["s3pump: error: --cluster needs Dask distributed: pip install 's3pump[dask]'"]
    assert objects(s3env, bucket, "n/") == {}


def test_explicit_credentials_reach_local_workers_through_their_environment(
        s3env: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``local:N`` workers get credentials the caller gave explicitly (here the API's config) through
    their environment at start: the upload works without AWS_* in this process's environment."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    bucket = f"t-emb-{os.getpid()}"
    s3env.boto().create_bucket(Bucket=bucket)
    root = tmp_path / "tree"
    files = make_tree(root, 60)
    report = upload([root], f"s3://{bucket}/e/", s3env.config(), cluster="local:2",
                    failed_list=tmp_path / "f.jsonl", cluster_options={"shard_files": 20})
    assert report.ok and report.files_done == 60
    assert set(objects(s3env, bucket, "e/")) == set(files)
