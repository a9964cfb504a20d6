"""Issue 12, item 5: files of different roots that map to one key are found before anything is sent,
in bounded memory (the external sort spills beyond ``max_in_memory``), and refused as a usage error."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from s3pump import TransferConfig, upload
from s3pump.errors import KeyClashError
from s3pump.sources.clashes import find_key_clashes
from s3pump.sources.pathfilter import PathFilter
from s3pump.store.memory import MemoryStore
from s3pump.urls import parse_s3_url


def _random_roots(base: Path, rng: random.Random) -> list[str]:
    """2-4 roots: directories with overlapping random relative paths, and loose files."""
    roots = []
    for r in range(rng.randint(2, 4)):
        if rng.random() < 0.25:
            f = base / f"loose{r}" / rng.choice(["a.txt", "b.txt", "zz"])
            f.parent.mkdir(parents=True)
            f.write_bytes(b"x")
            roots.append(str(f))
            continue
        d = base / f"root{r}"
        for _ in range(rng.randint(0, 25)):
            rel = "/".join(rng.choice(["a", "b", "c"]) for _ in range(rng.randint(0, 2)))
            p = d / rel / rng.choice(["a.txt", "b.txt", "zz", "q.bin"])
            if p.parent.is_file() or p.is_dir():
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
        d.mkdir(exist_ok=True)
        roots.append(str(d))
    return roots


def _naive(roots: list[str], prefix: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = defaultdict(list)
    for root in roots:
        r = Path(root)
        if r.is_file():
            keys[prefix + r.name].append(root)
            continue
        for p in sorted(r.rglob("*")):
            if p.is_file():
                keys[prefix + p.relative_to(r).as_posix()].append(str(p))
    return {k: v for k, v in keys.items() if len(v) > 1}


@pytest.mark.parametrize("seed", range(25))
def test_clashes_equal_a_naive_count_in_bounded_memory(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    roots = _random_roots(tmp_path, rng)
    dest = parse_s3_url("s3://bkt/p/")
    got = {c.key: sorted(c.sources) for c in find_key_clashes(roots, dest, max_in_memory=3)}
    assert got == {k: sorted(v) for k, v in _naive(roots, "p/").items()}


def test_upload_refuses_clashes_and_sends_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_bucket("bkt")
    for d, body in (("d1", b"one"), ("d2", b"two")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.txt").write_bytes(body)
        (tmp_path / d / f"{d}.txt").write_bytes(body)
    with pytest.raises(KeyClashError) as e:
        upload([tmp_path / "d1", tmp_path / "d2"], "s3://bkt/p/", TransferConfig(), store=store)
    assert str(e.value).splitlines() == [
        f"s3://bkt/p/x.txt: {tmp_path}/d1/x.txt and {tmp_path}/d2/x.txt map to this key; upload them to "
        "different prefixes, or --exclude one; nothing was uploaded"]
    assert e.value.exit_code == 2
    assert store.buckets["bkt"] == {}
    # --dry-run is refused the same way; a filter that removes the clash lets the run go
    with pytest.raises(KeyClashError):
        upload([tmp_path / "d1", tmp_path / "d2"], "s3://bkt/p/", TransferConfig(), store=store, dry_run=True)
    report = upload([tmp_path / "d1", tmp_path / "d2"], "s3://bkt/p/", TransferConfig(), store=store,
                    exclude=["x.txt"])
    assert report.ok and set(store.buckets["bkt"]) == {"p/d1.txt", "p/d2.txt"}


def test_a_single_root_is_not_walked_twice(tmp_path: Path) -> None:
    assert list(find_key_clashes([str(tmp_path / "does-not-matter")], parse_s3_url("s3://bkt/"),
                                 path_filter=PathFilter())) == []


def test_a_list_naming_one_key_twice_is_refused(tmp_path: Path) -> None:
    """The same class through ``--from-list``: two lines whose sources go to one key."""
    import json

    store = MemoryStore()
    store.create_bucket("bkt")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    listed = tmp_path / "list.jsonl"
    listed.write_text("".join(json.dumps({"source": str(p), "key": "p/same.txt"}) + "\n" for p in (a, b)))
    with pytest.raises(KeyClashError) as e:
        upload([], "s3://bkt/p/", TransferConfig(), store=store, from_list=listed)
    assert str(e.value) == (f"s3://bkt/p/same.txt: {a} and {b} map to this key; upload them to different "
                            "prefixes, or --exclude one; nothing was uploaded")
    assert store.buckets["bkt"] == {}


def test_a_walk_in_any_order_names_the_sources_in_root_order() -> None:
    """``--cluster``'s walk hands files over in the order its tasks finish: the clash still names
    the sources in the order of their roots (as the single walk does)."""
    from s3pump.items import UploadItem
    from s3pump.sources.clashes import find_clashes_in, root_order

    items = [UploadItem(key="p/x", size_bytes=1, source="/r/b/x", path="/r/b/x"),
             UploadItem(key="p/y", size_bytes=1, source="/r/a/y", path="/r/a/y"),
             UploadItem(key="p/x", size_bytes=1, source="/r/a/x", path="/r/a/x")]
    [clash] = find_clashes_in(items, order=root_order(["/r/a", "/r/b/"]))
    assert clash.key == "p/x" and clash.sources == ("/r/a/x", "/r/b/x")


def test_a_lost_walk_task_refuses_the_cluster_run_before_anything_is_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cluster``: a directory whose walk task was lost in the key-clash pass would be walked again
    by the upload, and a clash inside it go unseen; the run ends (exit 1) before any request instead.
    The cluster's walk is replaced by one that loses ``d2`` the first time and walks it the second."""
    import contextlib

    import s3pump.cluster.connect
    import s3pump.cluster.treewalk
    from s3pump.errors import WorkerLostError
    from s3pump.items import UploadItem

    store = MemoryStore()
    store.create_bucket("bkt")
    for d, body in (("d1", b"one"), ("d2", b"two")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.txt").write_bytes(body)
    walks: list[int] = []

    def walk_on_cluster(client: object, roots: list[str], dest: object, **_: object) -> object:
        walks.append(1)
        yield UploadItem(key="p/x.txt", size_bytes=3, source=f"{roots[0]}/x.txt", path=f"{roots[0]}/x.txt")
        if len(walks) == 1:
            yield UploadItem(key="p/", size_bytes=0, source=roots[1], error=WorkerLostError("lost"))
        else:
            yield UploadItem(key="p/x.txt", size_bytes=3, source=f"{roots[1]}/x.txt", path=f"{roots[1]}/x.txt")

    monkeypatch.setattr(s3pump.cluster.treewalk, "walk_on_cluster", walk_on_cluster)
    monkeypatch.setattr(s3pump.cluster.connect, "connect", lambda *a, **k: contextlib.nullcontext(object()))
    with pytest.raises(WorkerLostError) as e:
        upload([tmp_path / "d1", tmp_path / "d2"], "s3://bkt/p/", TransferConfig(), store=store,
               cluster="tcp://127.0.0.1:1")
    assert str(e.value) == (f"{tmp_path}/d2: the key-clash check could not walk this directory (the workers "
                            "that walked it were lost); nothing was uploaded; rerun the command")
    assert e.value.exit_code == 1 and walks == [1]
    assert store.buckets["bkt"] == {}
