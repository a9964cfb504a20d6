"""The Run between the jobs and the engine: one stop path, no signal handlers from a library call."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

import s3pump
from s3pump.config import TransferConfig
from s3pump.errors import CancelledError, FatalStoreError
from s3pump.events import Event, FileDone
from s3pump.items import UploadItem
from s3pump.run import Run
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

CFG = TransferConfig(part_size_bytes=5 * 1024 * 1024, multipart_threshold_bytes=5 * 1024 * 1024)


def _store() -> MemoryStore:
    store = MemoryStore()
    store.create_bucket("bkt")
    return store


def _tree(root: Path, n: int = 20) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"f{i}").write_bytes(b"x" * (i + 1))
    return root


def test_upload_from_a_thread_leaves_the_main_threads_sigint_handler(tmp_path: Path) -> None:
    """s3pump.upload() from a worker thread (someone's program) installs no signal handler: the main
    thread's own SIGINT handler is in place during the run and after it."""
    src = _tree(tmp_path / "src")
    store = _store()
    seen: list[Any] = []

    def mine(signum: int, frame: Any) -> None:  # the program's own handler
        return None

    def watch(event: Event) -> None:
        if isinstance(event, FileDone):
            seen.append(signal.getsignal(signal.SIGINT))

    previous = signal.signal(signal.SIGINT, mine)
    try:
        out: list[Any] = []
        t = threading.Thread(target=lambda: out.append(s3pump.upload(
            [src], "s3://bkt/p/", CFG, store=store, subscribers=[watch], failed_list=tmp_path / "fl")))
        t.start()
        t.join(60)
        assert out and out[0].files_done == 20
        assert signal.getsignal(signal.SIGINT) is mine
        assert seen and all(h is mine for h in seen)
        # from the main thread too: a library call leaves the handlers alone
        seen.clear()
        report = s3pump.upload([src], "s3://bkt/q/", CFG, store=store, subscribers=[watch],
                               failed_list=tmp_path / "fl2")
        assert report.files_done == 20 and seen and all(h is mine for h in seen)
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_run_with_handle_signals_cancels_then_restores(tmp_path: Path) -> None:
    """The CLI's choice: the first SIGINT cancels the transfer at a safe point (CancelledError), and the
    handlers in force before the run are back afterwards."""
    store = _store()
    before = signal.getsignal(signal.SIGINT)

    def items() -> Any:
        yield UploadItem(key="a", size_bytes=1, source="a", body=b"a")
        signal.raise_signal(signal.SIGINT)  # arrives while the engine runs
        for i in range(100):
            yield UploadItem(key=f"b{i}", size_bytes=1, source="b", body=b"b")

    with pytest.raises(CancelledError), Run("upload", CFG, "bkt", store=store, handle_signals=True,
                                             failed_list=tmp_path / "fl") as run:
        assert signal.getsignal(signal.SIGINT) != before
        run.transfer(items())
    assert signal.getsignal(signal.SIGINT) is before
    assert len(store.buckets["bkt"]) < 101  # stopped early
    assert not any(store.uploads.get("bkt", {}).values())


def test_graceful_stop_sets_the_jobs_event_and_a_second_signal_interrupts(tmp_path: Path) -> None:
    stop = threading.Event()
    with Run("export", CFG, "bkt", store=_store(), handle_signals=True, graceful_stop=stop,
             failed_list=tmp_path / "fl"):
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)


def test_an_upload_whose_abort_failed_is_aborted_when_the_run_ends(tmp_path: Path) -> None:
    """The one registry: an upload whose abort was refused stays registered, and the run's end
    aborts it once more."""
    store = _store()
    refusals = iter([FatalStoreError("refused", status=403, code="AccessDenied")])

    def fault(op: str, key: str) -> FatalStoreError | None:
        return next(refusals, None) if op == "AbortMultipartUpload" else None

    with Run("upload", CFG, "bkt", store=store, failed_list=tmp_path / "fl") as run:
        assert run.uploads is not None
        upload_id = run.uploads.create("k", ObjectAttributes())
        assert list(store.uploads["bkt"]) == [upload_id]
        store.fault = fault
        assert run.uploads.abort("k", upload_id) is not None  # refused: still registered
        assert run.uploads.items() == [("k", upload_id)] and list(store.uploads["bkt"]) == [upload_id]
    assert not store.uploads["bkt"]
