"""Reaching a user's Dask scheduler: a ``tls://`` address without certificates, and the task keys
the dashboard groups by."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from s3pump.cluster.connect import connect
from s3pump.cluster.coordinator import task_key
from s3pump.errors import UsageError


def test_a_tls_address_without_certificates_in_dask_config_is_one_line_exit_2(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: Dask's ``TypeError: TLS expects a ssl_context argument`` traceback, exit 1."""
    import dask.config

    monkeypatch.setattr(dask.config, "config", {**dask.config.config})  # this test's changes stay here
    dask.config.set({"distributed.comm.tls.ca-file": None, "distributed.comm.tls.client.cert": None})
    with pytest.raises(UsageError) as e, connect("tls://127.0.0.1:9"):
        pass
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    assert "a tls:// scheduler needs this process's certificates" in str(e.value)
    assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in str(e.value)


def test_task_keys_group_by_kind_on_the_dashboard() -> None:
    from dask.utils import key_split

    assert key_split(task_key("s3pump-upload-0a1b2c3d4e5f", "shard", 7)) == "s3pump-upload-shard"
    assert key_split(task_key("s3pump-export-abcdef012345", "range", 0)) == "s3pump-export-range"
