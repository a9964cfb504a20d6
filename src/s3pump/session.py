"""Connecting a job to its store: credentials, endpoint, ``--embedded``, and the bucket check."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .awsconfig import freeze
from .config import TransferConfig
from .logs import register_secret
from .retry import RetryPolicy
from .store.base import Store
from .store.s3 import S3Store

__all__ = ["open_store", "state_dir"]


def state_dir() -> Path:
    """Where s3pump keeps failed-lists, journals and caches (``$S3PUMP_STATE_DIR`` overrides)."""
    override = os.environ.get("S3PUMP_STATE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir("s3pump"))


def open_store(
    config: TransferConfig, bucket: str, *, embedded: bool = False, check_bucket: bool = True,
    policy: RetryPolicy | None = None,
) -> tuple[Store, TransferConfig]:
    """An S3Store for ``config``, and the config actually used.

    With ``embedded``, the local SeaweedFS is started (or reused), the config points at
    it with its credentials, and the bucket is created if missing. Otherwise the bucket
    is checked with HeadBucket, so a wrong name or bad credentials fail before any upload.
    ``check_bucket=False`` does neither (``ls`` of all buckets).
    ``policy``: the run's retry policy, for the store's synchronous calls (from the bucket check on).

    Raises:
        NoSuchBucketError, CredentialsError, AccessDeniedError, NetworkError: the check failed.
    """
    if embedded:
        from .devserver import ensure_embedded

        server = ensure_embedded(lambda line: print(f"s3pump: {line}", file=sys.stderr, flush=True))
        config = config.replace(
            endpoint_url=server.endpoint_url, region=server.region,
            access_key_id=server.access_key_id, secret_access_key=server.secret_access_key,
            session_token=None, profile=None,
        )
    for secret in (config.access_key_id, config.secret_access_key, config.session_token,
                   os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"),
                   os.environ.get("AWS_SESSION_TOKEN")):
        register_secret(secret)  # masked in every log record and --debug traceback from here on
    store = S3Store(config)
    try:
        frozen = freeze(store.settings.credentials, config.profile)
    except BaseException:
        store.close()
        raise
    register_secret(frozen.secret_key)
    register_secret(frozen.token)
    # the config actually used: the endpoint and region botocore resolved (journal keys, messages)
    config = config.replace(endpoint_url=store.settings.endpoint_url, region=store.settings.region)
    if policy is not None:
        store.use_retry_policy(policy)
    try:
        if embedded and check_bucket:
            store.create_bucket(bucket)
        elif check_bucket:
            store.head_bucket(bucket)
    except BaseException:
        store.close()
        raise
    return store, config
