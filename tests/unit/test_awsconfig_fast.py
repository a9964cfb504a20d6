"""awsconfig's resolution without botocore gives botocore's own answer wherever it is taken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3pump import awsconfig
from s3pump.errors import UsageError

BASE = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
CASES: list[tuple[dict[str, str], dict[str, object]]] = [
    ({}, {}),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}, {}),
    ({"AWS_ENDPOINT_URL_S3": "http://s3.local:1", "AWS_ENDPOINT_URL": "http://other:2"}, {}),
    ({"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://other:2"}, {}),
    ({"AWS_ENDPOINT_URL": "http://x:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, {}),
    ({"AWS_ENDPOINT_URL": "http://x:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "TRUE"}, {}),
    ({"AWS_ENDPOINT_URL": "http://x:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false"}, {}),
    ({"AWS_ENDPOINT_URL": "http://x:1"}, {"endpoint_url": "https://flag:3"}),
    ({"AWS_DEFAULT_REGION": "eu-west-3"}, {}),
    ({"AWS_DEFAULT_REGION": ""}, {}),
    ({"AWS_DEFAULT_REGION": "eu-west-3"}, {"region": "ap-south-1"}),
    ({"AWS_SESSION_TOKEN": "tok"}, {}),
    ({"AWS_SECURITY_TOKEN": "old", "AWS_SESSION_TOKEN": "new"}, {}),
    ({"AWS_SECURITY_TOKEN": "", "AWS_SESSION_TOKEN": "new"}, {}),
    ({}, {"static_credentials": ("AKSTATIC", "s2", None)}),
    ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, {"static_credentials": ("AKSTATIC", "s2", "t")}),
]


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws
    return tmp_path


def _keys(credentials: object) -> tuple[object, ...]:
    f = credentials.get_frozen_credentials()  # type: ignore[attr-defined]
    return (f.access_key, f.secret_key, f.token)


def _view(s: awsconfig.AwsSettings) -> tuple[object, ...]:
    return (s.endpoint_url, s.region, s.path_style, _keys(s.credentials))


@pytest.mark.parametrize(("env", "args"), CASES)
@pytest.mark.parametrize("files", ["missing", "empty", "devnull"])
def test_fast_path_is_botocores_answer(no_config: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                       args: dict[str, object], files: str) -> None:
    if files == "empty":
        (no_config / "config").write_text("")
        (no_config / "credentials").write_text("")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(no_config / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(no_config / "credentials"))
    elif files == "devnull":
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for k, v in {**BASE, **env}.items():
        monkeypatch.setenv(k, v)
    kw = {"endpoint_url": None, "region": None, "profile": None, "static_credentials": None, **args}
    fast = awsconfig._without_config_files(**kw)  # type: ignore[arg-type]
    assert fast is not None
    slow = awsconfig._with_botocore(**kw)  # type: ignore[arg-type]
    assert _view(fast) == _view(slow)
    assert _keys(fast.session.get_credentials()) == _keys(slow.credentials)  # the control plane's, made later


@pytest.mark.parametrize("why", ["profile flag", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "config file",
                                 "credentials file", "expiring credentials", "no credentials"])
def test_botocore_decides_otherwise(no_config: Path, monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    for k, v in BASE.items():
        monkeypatch.setenv(k, v)
    profile = None
    if why == "profile flag":
        profile = "p"
    elif why in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.setenv(why, "p")
    elif why == "config file":
        (no_config / "config").write_text("[default]\nregion = eu-north-1\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(no_config / "config"))
    elif why == "credentials file":
        (no_config / "creds").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(no_config / "creds"))
    elif why == "expiring credentials":
        monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert awsconfig._without_config_files(None, None, profile, None) is None
    if why == "config file":
        assert awsconfig.resolve_aws(endpoint_url=None, region=None, profile=None).region == "eu-north-1"


def test_a_bad_endpoint_is_refused_on_both_paths(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {**BASE, "AWS_ENDPOINT_URL": "ftp://x"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(UsageError):
        awsconfig._without_config_files(None, None, None, None)
    with pytest.raises(UsageError):
        awsconfig._with_botocore(None, None, None, None)


def test_a_run_with_env_credentials_loads_no_botocore(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(BASE, HOME=str(tmp_path), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    code = ("import sys\nfrom s3pump.config import TransferConfig\nfrom s3pump.store.s3 import S3Store\n"
            "s = S3Store(TransferConfig.from_env())\nprint(s.settings.endpoint_url, 'botocore' in sys.modules)\n"
            "s.close()\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["http://127.0.0.1:9", "False"], out.stderr


def test_s3_settings_in_the_credentials_file_alone_are_read(no_config: Path) -> None:
    """botocore merges the credentials file's profile into the config, nested ``s3`` block included,
    so the aws cli honours ``max_concurrent_requests`` there with no config file; so does s3pump."""
    (no_config / ".aws").mkdir()
    (no_config / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = A\naws_secret_access_key = B\n"
        "s3 =\n  max_concurrent_requests = 7\n  multipart_chunksize = 16MB\n")
    assert awsconfig.profile_transfer_defaults(None) == {"concurrency": 7, "part_size_bytes": 16 * 1024 * 1024}
