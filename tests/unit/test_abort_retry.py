"""An abort is retried in one layer only (OpenUploads, by the run's policy; the store sends one
request: Store.abort_multipart_upload), and the engine's last aborts at a cancel run on its control
pool, not on the scheduler thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from s3pump.config import TransferConfig
from s3pump.engine.scheduler import Engine
from s3pump.engine.uploads import OpenUploads
from s3pump.errors import CancelledError, FatalStoreError, ServerError, StoreError
from s3pump.events import Event, EventBus, MultipartAbortFailed, PartDone, RetryScheduled
from s3pump.items import UploadItem
from s3pump.retry import RetryPolicy
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

BUCKET = "bkt"
CONFIG = TransferConfig(max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.001)


class _OnePartReady:
    """A stream's PartSource whose first part is ready and whose next one never is."""

    part_size_bytes = 5 * 1024 * 1024
    counts_reads = False
    full_object_checksum = None

    def __init__(self) -> None:
        self._handed_out = False

    def bind(self, wakeup: Callable[[], None]) -> None:
        return None

    def next_part(self) -> tuple[int, bytes] | None:
        if self._handed_out:
            return None
        self._handed_out = True
        return 1, b"x" * 1024

    def release(self, part_number: int) -> None:
        return None

    def finish(self) -> None:
        return None

    def close(self) -> None:
        return None


def _item() -> UploadItem:
    return UploadItem(key="k", size_bytes=0, source="-", parts=_OnePartReady())


def _aborts(store: MemoryStore) -> int:
    return sum(1 for op, _ in store.request_log if op == "AbortMultipartUpload")


def test_a_refused_abort_is_sent_max_attempts_times_and_retried_twice() -> None:
    def fault(op: str, key: str) -> StoreError | None:
        if op == "UploadPart":
            return FatalStoreError("denied", status=403, code="AccessDenied")
        if op == "AbortMultipartUpload":
            return ServerError("We encountered an internal error", status=500, code="InternalError")
        return None

    store = MemoryStore(fault=fault)
    store.create_bucket(BUCKET)
    events: list[Event] = []
    Engine(store, BUCKET, CONFIG, EventBus(events.append)).run([_item()])
    assert _aborts(store) == 3
    assert len([e for e in events if isinstance(e, RetryScheduled)]) == 2
    assert [type(e) for e in events if isinstance(e, MultipartAbortFailed)] == [MultipartAbortFailed]


def test_the_s3_store_sends_an_abort_once_for_each_attempt_of_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 store's abort is one request: with the run's policy of 3 attempts (shared with the
    store, as a Run shares it), a refused abort is 3 requests and 2 retries, not 3 x 3."""
    from s3pump.store.s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = S3Store(TransferConfig(endpoint_url="http://127.0.0.1:9", region="us-east-1"))
    sent: list[str] = []

    def refuse(method: str, bucket: str, key: str | None, query: str, operation: str,
               **_: object) -> tuple[int, list[tuple[str, str]], bytes]:
        sent.append(operation)
        raise ServerError("We encountered an internal error", status=500, code="InternalError")

    retries: list[tuple[str, int | None]] = []
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.001,
                         on_retry=lambda what, attempt, delay_s, error: retries.append(what))
    try:
        monkeypatch.setattr(store, "_crt_once", refuse)
        store.use_retry_policy(policy)
        error = OpenUploads(store, BUCKET, policy).abort("k", "upload-1")
    finally:
        store.close()
    assert isinstance(error, ServerError)
    assert sent == ["AbortMultipartUpload"] * 3
    assert retries == [("k", None)] * 2


def test_the_aborts_of_a_cancel_run_on_the_control_pool() -> None:
    threads: list[str] = []

    def record(op: str, key: str) -> StoreError | None:
        if op == "AbortMultipartUpload":
            threads.append(threading.current_thread().name)
        return None

    store = MemoryStore(fault=record)
    store.create_bucket(BUCKET)
    engine: Engine

    def cancel_after_the_part(event: Event) -> None:
        if isinstance(event, PartDone):
            engine.cancel()

    engine = Engine(store, BUCKET, CONFIG, EventBus(cancel_after_the_part))
    with pytest.raises(CancelledError):
        engine.run([_item()])
    assert len(threads) == 1 and threads[0].startswith("s3pump-control"), threads
    assert not store.uploads[BUCKET]


def test_rb_force_retries_a_refused_abort_by_the_runs_policy() -> None:
    """An abort outside a run's registry (rb --force's; the sweeps' are the same call, journal_aborts.abort_upload)
    is retried by the run's policy too: a 500 on the first AbortMultipartUpload, then the bucket goes."""
    from s3pump.jobs.buckets import remove_bucket
    from s3pump.run import Run

    refused: list[str] = []

    def refuse_once(op: str, key: str) -> StoreError | None:
        if op == "AbortMultipartUpload" and not refused:
            refused.append(key)
            return ServerError("We encountered an internal error", status=500, code="InternalError")
        return None

    store = MemoryStore(fault=refuse_once)
    store.create_bucket(BUCKET)
    store.create_multipart_upload(BUCKET, "half", ObjectAttributes())
    events: list[Event] = []
    with Run("rb", CONFIG, BUCKET, store=store, subscribers=[events.append]) as run:
        remove_bucket(run.store, BUCKET, force=True, policy=run.policy)
    assert refused == ["half"] and _aborts(store) == 2
    assert [(e.key, e.part_number) for e in events if isinstance(e, RetryScheduled)] == [("half", None)]
    assert BUCKET not in store.buckets
