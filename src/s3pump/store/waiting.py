"""A synchronous PutObject over a :class:`~s3pump.store.base.Store`'s asynchronous one.

For the few small objects a job writes itself and must know stored before it goes on (export's
checkpoint, dedup state and dead-letter entries). Retries are the run's
:class:`~s3pump.retry.RetryPolicy` (the store's, which a run shares), so they spend the run's
budget and are counted like every other retry.
"""

from __future__ import annotations

import threading

from ..errors import RequestTimeoutError, S3PumpError, StoreError
from ..retry import RetryPolicy
from .base import ObjectAttributes, PutResult, Store

__all__ = ["put_and_wait"]


def put_and_wait(store: Store, bucket: str, key: str, body: bytes, attrs: ObjectAttributes, *,
                 timeout_s: float, policy: RetryPolicy | None = None) -> PutResult:
    """PutObject ``body`` to ``s3://bucket/key`` and wait for the answer (at most ``timeout_s`` per
    attempt), retried by ``policy`` (default: the store's ``retry`` policy).

    Raises:
        StoreError: the PUT failed for good (fatally, or past the policy's attempts or budget).
        SourceError: the body could not be read.
    """
    policy = policy or getattr(store, "retry", None) or RetryPolicy()
    return policy.call(_put_once, store, bucket, key, body, attrs, timeout_s, what=(key, None))


def _put_once(store: Store, bucket: str, key: str, body: bytes, attrs: ObjectAttributes,
              timeout_s: float) -> PutResult:
    done = threading.Event()
    box: list[PutResult | S3PumpError] = []

    def on_done(result: PutResult | S3PumpError) -> None:
        box.append(result)
        done.set()

    try:
        request = store.put_bytes(bucket, key, body, attrs, on_done)
    except StoreError:
        raise
    if not done.wait(timeout_s):
        request.cancel()
        done.wait(10.0)
    result = box[0] if box else RequestTimeoutError(f"s3://{bucket}/{key}: no response within {timeout_s:.0f} s")
    if isinstance(result, S3PumpError):
        raise result
    return result
