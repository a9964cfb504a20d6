"""Issue 30: a cancel waits for the single PUTs in flight and reports each one the server stored
(``FileDone``, so a journal knows the object exists and a rerun does not send it again); a PUT
whose answer never comes is not reported done.

The store here answers each PUT after a delay from a thread of its own, as a server does; a
request the client cancels is still stored by the "server" when its delay ends (the client only
loses the answer), which is what made a cancelled run's journal miss objects."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.engine.scheduler import Engine
from s3pump.errors import CancelledError, NetworkError
from s3pump.events import Event, EventBus, FileDone, FileFailed, FileSkipped
from s3pump.items import UploadItem
from s3pump.resume import ResumeJournal
from s3pump.run import Run
from s3pump.sources.walk import walk_items
from s3pump.store.base import DoneCallback, ObjectAttributes, PutResult
from s3pump.store.body import StreamBody
from s3pump.store.memory import MemoryStore
from s3pump.urls import parse_s3_url

CFG = TransferConfig(concurrency=8, backoff_base_s=0.001, backoff_max_s=0.01)


class _Answer:
    """A request handle: answered once, by the "server" or by the client's cancel."""

    def __init__(self, on_done: DoneCallback) -> None:
        self._on_done = on_done
        self._lock = threading.Lock()
        self._answered = False
        self.cancelled = threading.Event()

    def answer(self, result: PutResult | Exception) -> None:
        with self._lock:
            if self._answered:
                return
            self._answered = True
        self._on_done(result)  # type: ignore[arg-type]

    def cancel(self) -> None:
        self.cancelled.set()
        self.answer(NetworkError("request cancelled"))


class SlowStore(MemoryStore):
    """PUTs stored and answered ``delay_s`` after they were sent, from a thread each; the keys in
    ``hang`` are never answered (nor stored) unless cancelled."""

    def __init__(self, delay_s: float, hang: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.hang = hang
        self.sent: list[str] = []
        self._threads: list[threading.Thread] = []

    def put_file(self, bucket: str, key: str, path: str, size_bytes: int, attrs: ObjectAttributes,
                 on_done: DoneCallback) -> _Answer:  # type: ignore[override]
        with open(path, "rb") as f:
            return self._later(bucket, key, f.read(), attrs, on_done)

    def put_bytes(self, bucket: str, key: str, body: bytes | memoryview | StreamBody, attrs: ObjectAttributes,
                  on_done: DoneCallback) -> _Answer:  # type: ignore[override]
        data = bytes(body) if isinstance(body, bytes | memoryview) else body.read()
        return self._later(bucket, key, data, attrs, on_done)

    def _later(self, bucket: str, key: str, data: bytes, attrs: ObjectAttributes, on_done: DoneCallback) -> _Answer:
        handle = _Answer(on_done)

        def serve() -> None:
            if key in self.hang:
                handle.cancelled.wait()
                return
            time.sleep(self.delay_s)  # the server works on it: the client's cancel does not stop that
            MemoryStore.put_bytes(self, bucket, key, data, attrs, handle.answer)

        thread = threading.Thread(target=serve, daemon=True)
        self._threads.append(thread)
        self.sent.append(key)
        thread.start()
        return handle

    def settle(self) -> None:
        """Wait until every request sent was served."""
        for t in self._threads:
            t.join(10)


def _files(root: Path, n: int) -> list[UploadItem]:
    root.mkdir()
    items = []
    for i in range(n):
        p = root / f"f{i}.bin"
        p.write_bytes(f"file {i}\n".encode() * (i + 1))
        st = p.stat()
        items.append(UploadItem(f"f{i}.bin", st.st_size, str(p), path=str(p), mtime_ns=st.st_mtime_ns))
    return items


def _cancel_when(sent: Callable[[], int], n: int, cancel: Callable[[], None]) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 10
        while sent() < n and time.monotonic() < deadline:
            time.sleep(0.005)
        cancel()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_cancel_waits_for_puts_in_flight_and_reports_each_one_stored(tmp_path: Path) -> None:
    """8 PUTs in flight (0.5 s each) when the engine is cancelled: every one is stored by the
    server, and every one gets its FileDone with the stored object's ETag (was: none, the client
    cancelled them and lost the answers)."""
    store = SlowStore(0.5)
    store.create_bucket("bkt")
    events: list[Event] = []
    engine = Engine(store, "bkt", CFG, EventBus(events.append))
    watcher = _cancel_when(lambda: len(store.sent), 8, engine.cancel)
    with pytest.raises(CancelledError):
        engine.run(_files(tmp_path / "src", 20))
    watcher.join()
    store.settle()
    stored = store.snapshot("bkt")
    assert len(stored) == 8
    done = {e.key: e.etag for e in events if isinstance(e, FileDone)}
    assert done == {k: o.etag for k, o in stored.items()}
    assert not [e for e in events if isinstance(e, FileFailed)]


def test_a_put_whose_answer_never_comes_is_not_reported_done(tmp_path: Path) -> None:
    """One of 4 PUTs in flight never answers: the stop waits for it until its request timeout
    (1 s here), cancels it and reports it neither done nor failed (the rerun sends it); the other
    3 are reported done."""
    store = SlowStore(0.3, hang=frozenset({"f0.bin"}))
    store.create_bucket("bkt")
    events: list[Event] = []
    engine = Engine(store, "bkt", CFG.replace(concurrency=4, request_timeout_s=1.0), EventBus(events.append))
    watcher = _cancel_when(lambda: len(store.sent), 4, engine.cancel)
    started = time.monotonic()
    with pytest.raises(CancelledError):
        engine.run(_files(tmp_path / "src", 10))
    elapsed = time.monotonic() - started
    watcher.join()
    store.settle()
    assert set(store.snapshot("bkt")) == {"f1.bin", "f2.bin", "f3.bin"}
    assert {e.key for e in events if isinstance(e, FileDone)} == {"f1.bin", "f2.bin", "f3.bin"}
    assert not [e for e in events if isinstance(e, FileFailed)]
    assert elapsed < 8, elapsed  # bounded by the request timeout, not waiting forever


def test_a_cancelled_run_journals_its_puts_in_flight_so_the_rerun_skips_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One-process ``upload`` cancelled (Ctrl-C) while 4 PUTs are in flight: the resume journal has
    them as done, so the rerun sends exactly the files the first run did not store."""
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "src"
    _files(src, 12)
    dest = "s3://bkt/p/"
    store = SlowStore(0.4)
    store.create_bucket("bkt")
    config = CFG.replace(concurrency=4)

    def transfer(cancel_after: int | None = None) -> list[Event]:
        events: list[Event] = []
        with Run("upload", config, "bkt", store=store, subscribers=[events.append],
                 failed_list=tmp_path / "failed.jsonl", resume=ResumeJournal([str(src)], dest)) as run:
            watcher = _cancel_when(lambda: len(store.sent), cancel_after, run.cancel) if cancel_after else None
            try:
                run.transfer(walk_items([str(src)], parse_s3_url(dest)))
            finally:
                if watcher is not None:
                    watcher.join()
        return events

    with pytest.raises(CancelledError):
        transfer(cancel_after=4)
    store.settle()
    first = set(store.snapshot("bkt"))
    assert len(first) == 4
    store.sent.clear()
    store.delay_s = 0.0
    second = transfer()
    assert {e.key for e in second if isinstance(e, FileSkipped)} == first
    assert set(store.sent) == {f"p/f{i}.bin" for i in range(12)} - first  # nothing stored is sent again
    assert {e.key for e in second if isinstance(e, FileDone)} == set(store.sent)
