"""moto in server mode as a second, independent S3 implementation for the tests (issue 12 item 16).

The server runs as a subprocess on a free 127.0.0.1 port with ``INITIAL_NO_AUTH_ACTION_COUNT=0``:
every request's SigV4 signature is checked from the start. The fixture then opens exactly three
unauthenticated calls (moto's ``/moto-api/reset-auth``) to create an IAM user with an allow-all
policy and an access key, and signs everything else with that key; a wrong secret is refused
with SignatureDoesNotMatch (tests/conformance proves it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config

from s3pump.config import TransferConfig

REGION = "us-east-1"


@dataclass(frozen=True)
class MotoEnv:
    """A running moto server and the signing key of its IAM user (same surface as ``S3Env``)."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION

    def config(self, **overrides: object) -> TransferConfig:
        return TransferConfig(
            endpoint_url=self.endpoint_url, region=self.region, access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        ).replace(**overrides)

    def env(self, state_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint_url, AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key, AWS_REGION=self.region,
            S3PUMP_STATE_DIR=str(state_dir), AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def boto(self, service: str = "s3", *, secret: str | None = None):
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=secret or self.secret_access_key,
            # moto returns a multipart object's composite checksum as if it were a full-object one, which
            # boto3 would reject on GetObject; the tests compare the bytes themselves
            config=botocore.config.Config(retries={"max_attempts": 2}, response_checksum_validation="when_required"),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log_path: Path) -> tuple[MotoEnv, subprocess.Popen[bytes]]:
    """Start ``python -m moto.server`` with signature checking on; create the IAM user and key."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(INITIAL_NO_AUTH_ACTION_COUNT="0", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    log = open(log_path, "wb")  # noqa: SIM115 - the server's log for the session
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            # the three unauthenticated calls that bootstrap the IAM user (moto's own API, not S3)
            req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"3", method="POST",
                                         headers={"Content-Type": "text/plain"})
            with urllib.request.urlopen(req, timeout=2) as r:
                json.load(r)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start; see {log_path}") from None
            time.sleep(0.2)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="AKIABOOTSTRAP0000000",
                       aws_secret_access_key="bootstrap")
    iam.create_user(UserName="s3pump-test")
    iam.put_user_policy(UserName="s3pump-test", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="s3pump-test")["AccessKey"]
    return MotoEnv(endpoint, key["AccessKeyId"], key["SecretAccessKey"]), proc


def stop_moto(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
