"""Issue 26: configuration mistakes are one line, exit 2, within 15 s, naming the file, profile
or process (they were 67-234-line tracebacks, exit 1). No server is needed: each fails before the
first request to the endpoint."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import run_cli

ROLE = "arn:aws:iam::123456789012:role/s3pump-test"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (an STS behind a black-holing firewall)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
    env.update(HOME=str(tmp_path), S3PUMP_STATE_DIR=str(tmp_path / "state"), AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


CASES = {
    "malformed config": ("config", "[default\nregion = us-east-1\n", {}, ["config", "cannot be parsed"]),
    "malformed credentials": ("credentials", "[default]\naws_access_key_id\n", {},
                              ["credentials", "cannot be parsed"]),
    "credential_process prints no JSON": (
        "config", f"[default]\ncredential_process = {sys.executable} -c \"print('not json')\"\n", {},
        ["credential_process", "profile default", "JSON"]),
    "credential_process fails": (
        "config", f"[profile ci]\ncredential_process = {sys.executable} -c \"import sys; sys.exit(3)\"\n",
        {"AWS_PROFILE": "ci"}, ["profile ci"]),
    "role_arn, STS refuses": (
        "config", f"[profile src]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = x\n"
                  f"[default]\nrole_arn = {ROLE}\nsource_profile = src\nregion = us-east-1\n",
        {"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:{closed}"}, ["profile default", "does not answer", "role_arn"]),
    "role_arn, STS silent": (
        "config", f"[profile src]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = x\n"
                  f"[default]\nrole_arn = {ROLE}\nsource_profile = src\nregion = us-east-1\n",
        {"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:{silent}"}, ["profile default", "does not answer"]),
    "unknown profile": ("config", "[default]\nregion = us-east-1\n", {"AWS_PROFILE": "nosuch"},
                        ["nosuch", "no such profile"]),
}


# the silent STS waits out botocore's timeouts (about 11 s): a deadline on the wall clock, so it runs
# in the serial timing phase, where no other test competes for the two cores
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.timing) if "silent" in c else c for c in CASES])
@pytest.mark.parametrize("verb", ["upload", "ls"])
def test_configuration_mistake_is_one_line_exit_2(tmp_path: Path, silent_port: int, case: str, verb: str) -> None:
    which, text, extra, words = CASES[case]
    path = tmp_path / f"aws-{which}"
    path.write_text(text)
    variable = "AWS_CONFIG_FILE" if which == "config" else "AWS_SHARED_CREDENTIALS_FILE"
    env = cli_env(tmp_path, **{variable: str(path)},
                  **{k: v.format(closed=closed_port(), silent=silent_port) for k, v in extra.items()})
    (tmp_path / "f.txt").write_text("x")
    args = (["upload", str(tmp_path / "f.txt"), "s3://bucket/p/", "--no-progress"] if verb == "upload" else ["ls"])
    started = time.monotonic()
    p = run_cli([*args, "--endpoint-url", f"http://127.0.0.1:{closed_port()}"], env, timeout=60)
    elapsed = time.monotonic() - started
    lines = [line for line in p.stderr.decode().splitlines() if line.strip()]
    assert p.returncode == 2, p.stderr.decode()
    assert len(lines) == 1 and lines[0].startswith("s3pump: error: "), p.stderr.decode()
    assert "Traceback" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    if which != "config" or "role" not in case:
        assert str(path) in lines[0] or "profile" in lines[0], lines[0]
    assert elapsed <= 15, elapsed


def test_virtual_addressing_falls_back_to_path_style_for_an_ip_endpoint(s3env, bucket: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``addressing_style = virtual`` with an IP endpoint: the aws cli uses path style (a bucket
    cannot be a label of an IP address); s3pump did virtual-hosted and failed to resolve the host."""
    from s3pump.awsconfig import resolve_aws

    from ..conftest import list_all

    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = virtual\n")
    env = s3env.env(tmp_path / "state")
    env["AWS_CONFIG_FILE"] = str(config)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"path style\n")
    p = run_cli(["upload", str(tmp_path / "d"), f"s3://{bucket}/v/", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    assert list(list_all(s3env.boto(), bucket, "v/")) == ["v/a.txt"]

    for name, value in (("AWS_CONFIG_FILE", str(config)), ("AWS_SHARED_CREDENTIALS_FILE", os.devnull),
                        ("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")):
        monkeypatch.setenv(name, value)
    for endpoint, path_style in (("http://127.0.0.1:9000", True), ("http://localhost:9000", True),
                                 ("http://[::1]:9000", True), ("https://s3.example.com", False)):
        got = resolve_aws(endpoint_url=endpoint, region=None, profile=None)
        assert got.path_style is path_style, endpoint


@pytest.mark.parametrize("verb", ["export", "upload", "upload --from-list", "sync", "stream", "verify"])
def test_every_missing_input_exits_2_in_one_line(tmp_path: Path, verb: str) -> None:
    """A missing database, path, list, directory or file is a usage error (exit 2), as the aws cli's
    missing PATH; the export's database exited 1."""
    missing = str(tmp_path / "nope")
    args = {"export": ["export", missing, "--table", "T", "s3://bucket/x"],
            "upload": ["upload", missing, "s3://bucket/x/"],
            "upload --from-list": ["upload", "--from-list", missing, "s3://bucket/x/"],
            "sync": ["sync", missing, "s3://bucket/x/"],
            "stream": ["stream", missing, "s3://bucket/x/k"],
            "verify": ["verify", missing, "s3://bucket/x/"]}[verb]
    env = cli_env(tmp_path, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    p = run_cli([*args, "--endpoint-url", f"http://127.0.0.1:{closed_port()}"], env, timeout=60)
    lines = [line for line in p.stderr.decode().splitlines() if line.strip()]
    assert p.returncode == 2, p.stderr.decode()
    assert len(lines) == 1 and "nope" in lines[0] and "Traceback" not in lines[0], p.stderr.decode()
