"""Only the S3 gateway of the local SeaweedFS answers without keys.

Every TCP port the server's processes listen on is probed as another local user would: no S3
keys, no JWT, no client certificate. Unsecured, the filer's HTTP port reads, writes and deletes
objects by path, the master hands out write tokens, a volume server serves and takes needles by id,
and the gRPC services do all that (the filer's LookupDirectoryEntry, the master's Assign, a volume
server's ReadAllNeedles, the S3 gateway's IAM cache). Each refusal is checked against the same
request with the owner's keys (security.toml), which must work: the probes ask the right thing.
Both the tests' session server and one started by ``--embedded`` are checked.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from s3pump.devserver import DevServer
from tests.conftest import S3Env, run_cli
from tests.e2e.weedprobe import (
    Keys,
    grpc_call,
    http_call,
    listening_ports,
    no_client_cert,
    pb_string,
    pb_varint,
)

BODY = b"the owner's bytes " + uuid.uuid4().hex.encode()


@pytest.fixture(params=["session", "embedded"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DevServer]:
    if request.param == "session":
        yield request.getfixturevalue("s3env").server
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
    env.update(S3PUMP_EMBEDDED_DIR=str(tmp_path / "embedded"), S3PUMP_STATE_DIR=str(tmp_path / "state"),
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    (tmp_path / "f").write_bytes(b"x")
    try:
        r = run_cli(["upload", str(tmp_path / "f"), "s3://warm/f", "--embedded", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
        raw = json.loads((tmp_path / "embedded" / "server.json").read_text())
        yield DevServer(**{**raw, "ports": tuple(raw["ports"])})
    finally:
        run_cli(["serve", "--stop-embedded"], env)


def _client(server: DevServer):
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                        aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key)


def _fid(server: DevServer, keys: Keys | None, path: str) -> str:
    """The volume file id of ``path``'s first chunk, asked of the filer as its owner."""
    filer = server.ports[2]
    headers = keys.bearer(keys.filer_read) if keys else {}
    answer = http_call(filer, "GET", f"{path}?metadata=true", headers=headers)
    assert answer is not None and answer[0] == 200, answer
    entry = json.loads(answer[1])
    chunks = entry.get("chunks") or entry.get("Chunks")
    return chunks[0].get("file_id") or chunks[0]["fileId"]


@pytest.mark.e2e
def test_every_port_but_s3_refuses_a_caller_without_the_keys(server: DevServer) -> None:
    client = _client(server)
    bucket = f"sec-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="secret.txt", Body=BODY)
    victim = f"{bucket}-v"  # a collection (bucket) for the master's /col/delete to try
    client.create_bucket(Bucket=victim)
    client.put_object(Bucket=victim, Key="kept", Body=BODY + b" (victim)")
    master, volume, filer, s3 = server.ports
    keys = Keys.load(server.data_dir)
    path = f"/buckets/{bucket}/secret.txt"
    fid = _fid(server, keys, path)
    vid = int(fid.split(",")[0])
    ports = listening_ports(server.pid)
    known = {master, volume, filer, s3} | {p + 10000 for p in (master, volume, filer, s3)}
    assert ports <= known, f"listeners nobody probes here: {sorted(ports - known)}"
    assert {master, volume, filer, s3} <= ports
    refused: dict[str, bool] = {}

    # S3 without keys: AccessDenied for a read, a write and a listing
    for method, p, body in (("GET", f"/{bucket}/secret.txt", None), ("PUT", f"/{bucket}/planted-s3", b"evil"),
                            ("GET", f"/{bucket}?list-type=2", None)):
        answer = http_call(s3, method, p, body=body)
        refused[f"s3 {method} {p}"] = answer is not None and answer[0] == 403 and b"AccessDenied" in answer[1]

    # the filer's HTTP: read, list, write, delete by path
    for method, p, body in (("GET", path, None), ("GET", f"{path}?metadata=true", None),
                            ("GET", f"/buckets/{bucket}/", None), ("PUT", f"/buckets/{bucket}/planted", b"evil"),
                            ("DELETE", path, None)):
        answer = http_call(filer, method, p, body=body)
        refused[f"filer {method} {p}"] = answer is None or (answer[0] >= 400 and BODY not in answer[1]
                                                             and b"secret.txt" not in answer[1])

    # the master's HTTP: a write token and a fid for anyone, a collection deleted
    for p in ("/dir/assign", f"/dir/lookup?volumeId={vid}&fileId={fid}", f"/col/delete?collection={victim}"):
        for tls in (None, no_client_cert()):
            answer = http_call(master, "GET", p, tls=tls)
            refused[f"master {'https' if tls else 'http'} {p}"] = answer is None or (
                answer[0] >= 400 and b"fid" not in answer[1] and b"auth" not in answer[1])

    # a volume server: the needle read, overwritten, deleted by its id
    for method, body in (("GET", None), ("PUT", b"evil"), ("POST", b"evil"), ("DELETE", None)):
        answer = http_call(volume, method, f"/{fid}", body=body)
        refused[f"volume {method} /{fid}"] = answer is None or (answer[0] >= 400 and BODY not in answer[1])

    # gRPC: the filer's entry (with its chunks), a write assignment, every needle of the volume, the IAM cache
    calls = {
        filer + 10000: ("/filer_pb.SeaweedFiler/LookupDirectoryEntry",
                        pb_string(1, f"/buckets/{bucket}") + pb_string(2, "secret.txt"), b"secret.txt"),
        master + 10000: ("/master_pb.Seaweed/Assign", pb_varint(1, 1), b","),
        volume + 10000: ("/volume_server_pb.VolumeServer/ReadAllNeedles", pb_varint(1, vid), BODY),
        s3 + 10000: ("/messaging_pb.SeaweedS3IamCache/ListPolicies", b"", None),
    }
    for port, (method, message, _) in calls.items():
        for tls in (None, no_client_cert()):
            answer = grpc_call(port, method, message, tls=tls)
            refused[f"grpc {'tls' if tls else 'h2c'} :{port} {method}"] = not answer.http2 and not answer.data

    # the unix sockets beside the ports: only their owner may connect
    for sock in Path("/tmp").glob("seaweedfs-*.sock"):
        if any(sock.name.endswith(f"-{p}.sock") for p in known):
            refused[f"unix socket {sock}"] = stat.S_IMODE(sock.stat().st_mode) & 0o022 == 0

    answered = [what for what, ok in refused.items() if not ok]
    assert not answered, "answered without the keys:\n" + "\n".join(answered)
    # nothing was planted, changed or deleted
    assert client.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == BODY
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["secret.txt"]
    assert {bucket, victim} <= {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert client.get_object(Bucket=victim, Key="kept")["Body"].read() == BODY + b" (victim)"

    # the owner's keys open each door the probes knocked on: they asked the right things
    assert keys is not None
    assert http_call(filer, "GET", path, headers=keys.bearer(keys.filer_read)) == (200, BODY)
    assert http_call(volume, "GET", f"/{fid}", headers=keys.bearer(keys.volume_read, fid=fid)) == (200, BODY)
    assigned = http_call(master, "GET", "/dir/assign", tls=keys.tls)
    assert assigned is not None and assigned[0] == 200 and b'"fid"' in assigned[1], assigned
    for port, (method, message, expect) in calls.items():
        answer = grpc_call(port, method, message, tls=keys.tls)
        assert answer.http2 and (expect is None or expect in answer.data), (method, answer)


@pytest.mark.e2e
def test_the_security_files_are_the_owners_alone(s3env: S3Env) -> None:
    data = Path(s3env.server.data_dir)
    for name in ("security.toml", "seaweedfs.key", "seaweedfs.crt", "seaweedfs-ca.crt", "identities.json"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "data").stat().st_mode) == 0o700
