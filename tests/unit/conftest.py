"""Unit tests keep their journals and failed-lists in a temporary state directory, never in the
user's (a journal left there by another checkout, or another schema, must not change a result)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # not under tmp_path: some tests upload tmp_path itself
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path_factory.mktemp("state")))
