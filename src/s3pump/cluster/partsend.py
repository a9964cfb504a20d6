"""One large file's parts spread over the workers: the worker's side (see :mod:`.parts`).

:func:`run_unit` is the task of ``upload``/``sync --cluster``: a :class:`~.shards.Shard` goes to the
engine (:func:`~.worker.run_shard`), a :class:`~.parts.PartRange` to :func:`send_range`, which
sends UploadPart for each of its parts with the worker's store (its credentials, its checksum
algorithm: awscrt computes each part's checksum as it sends it, as for the engine's parts) and
its share of ``--bwlimit``/``--max-rps`` (the process's :class:`~s3pump.engine.limits.EngineLimits`),
up to ``max_parts_in_flight`` at once, each retried by the run's retry policy.

The file is opened once, as the walk saw it (the same inode; size and mtime as the walk stat'ed
them), and checked again before each part is sent and after the last: a file that changed or ends
short makes the range fail with :class:`~s3pump.errors.SourceChangedError`, and the coordinator
aborts the upload. A range cancelled by the coordinator (Ctrl-C) stops at once (its requests
cancelled); the coordinator aborts the upload once the workers are idle.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distributed import get_worker

from ..engine.inflight import timeout_for
from ..errors import CancelledError, RequestTimeoutError, S3PumpError, SourceChangedError
from ..events import Event, RetryScheduled
from ..fileid import open_version
from ..retry import RetryPolicy
from ..store.base import CompletedPart, PutResult
from ..store.body import FileRange, Throttled
from .parts import PartRange, RangeResult
from .shards import Shard
from .worker import CANCEL_POLL_S, WorkerRuntime, local_path, progress_topic, run_shard

__all__ = ["run_unit", "send_range"]


def run_unit(plugin: str, unit: Shard | PartRange) -> Any:
    """The task: a shard through the engine, or a split file's range of parts (:func:`send_range`)."""
    if not isinstance(unit, PartRange):
        return run_shard(plugin, unit)
    worker = get_worker()
    runtime = worker.plugins[plugin]
    assert isinstance(runtime, WorkerRuntime)
    return send_range(runtime, unit, str(worker.get_current_task()))


def _check(fd: int, rng: PartRange, path: str, mtime_ns: int) -> None:
    """The open file still has the size the walk saw and ``mtime_ns``, else SourceChangedError."""
    st = os.fstat(fd)
    if st.st_size != rng.item.size_bytes or st.st_mtime_ns != mtime_ns:
        raise SourceChangedError(f"{path}: file changed while uploading ({rng.item.size_bytes} -> {st.st_size} "
                                 "bytes); not completed, rerun to upload the new version")


def send_range(runtime: WorkerRuntime, rng: PartRange, key: str | None = None) -> RangeResult:
    """Upload parts ``rng.first``..``rng.last`` of the file to ``rng.upload_id`` (module docstring).
    Never raises for the file's or a request's error: the result carries it."""
    events: list[Event] = []
    stop = threading.Event()
    config = runtime.config
    policy = RetryPolicy.from_config(config, lambda what, attempt, delay_s, error: events.append(
        RetryScheduled(what[0], what[1], attempt, delay_s, error)))
    item = rng.item
    path = local_path(item.path or item.source, runtime._paths)
    identity = item.identity
    if identity is not None:  # another host numbers devices its own way; a remapped path is another mount
        identity = None if runtime._paths else dataclasses.replace(identity, device=None)
    parts: dict[int, tuple[CompletedPart, float]] = {}
    lock = threading.Lock()
    sent = 0
    mtime_ns = item.mtime_ns
    started = time.monotonic()
    error: S3PumpError | None = None

    def send(store: Any, fd: int, number: int) -> None:
        nonlocal sent
        offset = (number - 1) * rng.part_size_bytes
        length = min(rng.part_size_bytes, item.size_bytes - offset)
        first_started = time.monotonic()

        def once() -> PutResult:
            if stop.is_set():
                raise CancelledError(f"{key}: cancelled")
            _check(fd, rng, path, mtime_ns)
            if runtime.limits.rps is not None:
                runtime.limits.rps.take(1)
            body: Any = FileRange(fd, offset, length, path)
            if runtime.limits.bandwidth is not None:
                body = Throttled(body, runtime.limits.bandwidth)
            return _wait(store.upload_part(runtime.bucket, item.key, rng.upload_id, number, body, box.put),
                         box, stop, timeout_for(length, config.request_timeout_s), item.key)

        box = _Box()
        result = policy.call(once, what=(item.key, number))
        with lock:
            parts[number] = (CompletedPart(number, result.etag, length, result.checksum),
                             time.monotonic() - first_started)
            sent += length
            if key is not None:
                runtime._worker.log_event(progress_topic(runtime.name), [rng.index, 0, sent])

    with runtime.turn(key) as store:
        started = time.monotonic()
        with runtime.cancelled_with(key, _Stop(stop)):  # type: ignore[arg-type]
            try:
                fd = open_version(path, identity, follow=config.follow_symlinks)
            except S3PumpError as e:
                error = e
            else:
                try:
                    # the walk's mtime; a producer that gave none (0, as the engine reads it): the file's now
                    mtime_ns = item.mtime_ns or os.fstat(fd).st_mtime_ns
                    numbers = range(rng.first, rng.last + 1)
                    with ThreadPoolExecutor(max(1, min(len(numbers), config.max_parts_in_flight))) as pool:
                        futures = [pool.submit(send, store, fd, n) for n in numbers]
                        for f in futures:  # a part that failed fails the file: send no more of its parts
                            f.add_done_callback(lambda f: stop.set() if f.exception() is not None else None)
                        failures = [e for e in (f.exception() for f in futures) if e is not None]
                    for failed in failures:  # the first cause, not a part stopped because of it
                        if not isinstance(failed, S3PumpError):
                            raise failed
                        if error is None or (isinstance(error, CancelledError)
                                             and not isinstance(failed, CancelledError)):
                            error = failed
                    if error is None:
                        _check(fd, rng, path, mtime_ns)
                        now = os.stat(path, follow_symlinks=config.follow_symlinks)
                        if now.st_ino != os.fstat(fd).st_ino:
                            raise SourceChangedError(f"{path}: replaced by another file while uploading; "
                                                     "not completed, rerun to upload it")
                except S3PumpError as e:
                    error = error or e
                except OSError as e:
                    error = error or SourceChangedError(f"{path}: {e.strerror} while uploading; not completed")
                finally:
                    os.close(fd)
    done = [parts[n] for n in sorted(parts)]
    return RangeResult(rng.index, runtime.address, os.getpid(), tuple(p for p, _ in done),
                       tuple(s for _, s in done), time.monotonic() - started, error, tuple(events))


class _Stop:
    """What :meth:`WorkerRuntime.cancelled_with` cancels: here, the range's stop flag."""

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def cancel(self) -> None:
        self._flag.set()


class _Box:
    """One request's answer, handed over from the store's thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: PutResult | S3PumpError | None = None

    def put(self, result: PutResult | S3PumpError) -> None:
        self.result = result
        self.done.set()


def _wait(request: Any, box: _Box, stop: threading.Event, timeout_s: float, key: str) -> PutResult:
    """The answer of ``request`` (cancelled on a stop, or after ``timeout_s``: RequestTimeoutError)."""
    deadline = time.monotonic() + timeout_s
    while not box.done.wait(CANCEL_POLL_S):
        if stop.is_set() or time.monotonic() >= deadline:
            request.cancel()
            box.done.wait(10.0)
            break
    result, box.result = box.result, None
    box.done.clear()
    if result is None or (stop.is_set() and isinstance(result, S3PumpError)):
        if stop.is_set():
            raise CancelledError(f"{key}: cancelled")
        raise RequestTimeoutError(f"{key}: no response within {timeout_s:.0f} s")
    if isinstance(result, S3PumpError):
        raise result
    return result
