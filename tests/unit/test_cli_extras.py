"""The lean base install: a command that needs an extra says which one, in one line, exit 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s3pump.cli import app


def test_export_without_the_export_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    r = CliRunner().invoke(app, ["export", str(tmp_path / "db.sqlite"), "s3://b/p", "--table", "t"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines == ["s3pump: error: export needs the 'export' extra: pip install 's3pump[export]'"]


def test_embedded_without_the_server_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import s3pump.devserver as devserver

    monkeypatch.setattr(devserver.shutil, "which", lambda name: None)
    monkeypatch.setattr(devserver.sys, "executable", str(tmp_path / "python"))  # no weed beside it
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    r = CliRunner().invoke(app, ["upload", str(tmp_path / "f"), "s3://bkt/p/", "--embedded", "--no-progress"])
    assert r.exit_code == 2, r.output
    assert "pip install 's3pump[server]'" in r.output and len([ln for ln in r.output.splitlines() if ln]) == 1


def test_version() -> None:
    import s3pump

    for flag in ("--version", "-V"):
        r = CliRunner().invoke(app, [flag])
        assert r.exit_code == 0 and r.output.strip() == f"s3pump {s3pump.__version__}"


@pytest.mark.parametrize("command", ["upload", "sync", "stream", "export", "cleanup", "generate", "serve"])
def test_help_shows_examples_defaults_and_env_without_python_types(command: str) -> None:
    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert r.exit_code == 0
    out = "\n".join(ln for ln in r.output.splitlines() if "--help" not in ln)  # Typer's own -h line
    assert "Examples" in out and f"s3pump {command}" in out
    assert "<bool>" not in out and "list[str]" not in out
    if command in ("upload", "sync", "stream", "export"):
        assert "[default: 8MiB]" in out or "[default: parquet]" in out
        assert "[env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL]" in out and "[env: AWS_PROFILE]" in out
