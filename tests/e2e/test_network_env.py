"""Issue 26: the network a company has. An https endpoint signed by a private CA (a SeaweedFS
https gateway with a certificate from a CA the test makes, ``trustme``), and a real forward proxy
(``proxy.py``) in front of it.

* The CA is given by ``AWS_CA_BUNDLE``, by the profile's ``ca_bundle`` or by ``--ca-bundle``:
  upload (single PUT and multipart), ls and export work and store the bytes; without it, the run
  ends in one line naming the certificate problem, exit 2, within 10 s.
* The proxy resolves ``*.proxy-only.test`` for itself; nothing else here can. An endpoint named so
  is reachable only through the proxy, so a run that succeeds sent every request through it; the
  proxy's record shows them. ``NO_PROXY`` sends a run straight to the endpoint (the record stays
  empty), and a proxy that is down is named as the proxy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from s3pump.devserver import pick_ports, start_server, stop_server

from ..conftest import list_all, run_cli

trustme = pytest.importorskip("trustme")
pytest.importorskip("proxy")

MIB = 2**20
PROXY_ONLY_HOST = "s3.proxy-only.test"
REPO = Path(__file__).resolve().parents[2]
CHINOOK = REPO.parent / "shared" / "data" / "Chinook_Sqlite.sqlite"
if not CHINOOK.exists():
    CHINOOK = Path("/work/shared/data/Chinook_Sqlite.sqlite")


@dataclass(frozen=True)
class TlsServer:
    http_url: str  # the same server without TLS (for the test's own checks)
    https_port: int
    s3_port: int
    ca_pem: Path
    access_key_id: str
    secret_access_key: str
    region: str

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def env(self, state_dir: Path, endpoint: str, **extra: str) -> dict[str, str]:
        """A CLI environment: this server's keys, nothing from the user's AWS setup, no proxy."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "S3PUMP_")) and k.lower() not in ("http_proxy", "https_proxy",
                                                                              "no_proxy", "all_proxy")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key_id, AWS_SECRET_ACCESS_KEY=self.secret_access_key,
                   AWS_REGION=self.region, AWS_ENDPOINT_URL=endpoint, S3PUMP_STATE_DIR=str(state_dir),
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        env.update(extra)
        return env

    def boto(self):
        return boto3.client("s3", endpoint_url=self.http_url, region_name=self.region,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    """SeaweedFS with an https S3 port whose certificate a private CA signed (for 127.0.0.1,
    localhost and the proxy-only name)."""
    base = Path(tempfile.mkdtemp(prefix="s3pump-tls-"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", PROXY_ONLY_HOST)
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    cert.private_key_pem.write_to_path(str(base / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    https_port = pick_ports(1)[0]
    server, proc = start_server(base / "srv", extra_args=[
        f"-s3.port.https={https_port}", f"-s3.cert.file={base / 'cert.pem'}", f"-s3.key.file={base / 'key.pem'}"])
    try:
        yield TlsServer(server.endpoint_url, https_port, server.ports[3], base / "ca.pem", server.access_key_id,
                        server.secret_access_key, server.region)
    finally:
        stop_server(proc, grace_s=2.0)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tls_bucket(tls_server: TlsServer) -> Iterator[str]:
    name = f"tls-{os.urandom(5).hex()}"
    client = tls_server.boto()
    client.create_bucket(Bucket=name)
    yield name
    left = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    assert not left, f"multipart uploads left open: {left}"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small file (single PUT) and a 20 MiB file (multipart at the default 8 MiB threshold)."""
    d = tmp_path / "tree"
    d.mkdir()
    (d / "small.txt").write_bytes(b"hello over tls\n")
    (d / "big.bin").write_bytes(os.urandom(20 * MIB))
    return d


def assert_tree_stored(server: TlsServer, bucket: str, prefix: str, tree: Path) -> None:
    client = server.boto()
    stored = list_all(client, bucket, prefix)
    assert sorted(stored) == sorted(f"{prefix}{p.name}" for p in tree.iterdir())
    for p in tree.iterdir():
        body = client.get_object(Bucket=bucket, Key=f"{prefix}{p.name}")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(p.read_bytes()).digest(), p.name


def one_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [line for line in proc.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr.decode()
    assert "Traceback" not in lines[0] and "AWS_ERROR" not in lines[0] and "AWS_IO" not in lines[0]
    return lines[0]


# ---------------------------------------------------------------- a private CA
def test_ca_bundle_from_env_uploads_lists_and_exports(tls_server: TlsServer, tls_bucket: str, tree: Path,
                                                      tmp_path: Path) -> None:
    env = tls_server.env(tmp_path / "state", tls_server.https_url, AWS_CA_BUNDLE=str(tls_server.ca_pem))
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/up/", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "up/", tree)

    ls = run_cli(["ls", f"s3://{tls_bucket}/up/"], env)
    assert ls.returncode == 0, ls.stderr.decode()
    assert sorted(line.split()[-1] for line in ls.stdout.decode().splitlines()) == ["big.bin", "small.txt"]
    buckets = run_cli(["ls"], env)  # the bucket list (the control plane's botocore client)
    assert buckets.returncode == 0 and tls_bucket in buckets.stdout.decode(), buckets.stderr.decode()

    ex = run_cli(["export", str(CHINOOK), f"s3://{tls_bucket}/lake", "--table", "Genre", "--format", "jsonl",
                  "--json", "--no-progress"], env)
    assert ex.returncode == 0, ex.stderr.decode()
    client = tls_server.boto()
    rows = []
    for key in list_all(client, tls_bucket, "lake/Genre/"):
        if "/_s3pump/" in key or "/_dlq/" in key:
            continue
        body = client.get_object(Bucket=tls_bucket, Key=key)["Body"].read()
        if key.endswith(".gz"):
            import gzip

            body = gzip.decompress(body)
        rows += [json.loads(line) for line in body.decode().splitlines()]
    source = sqlite3.connect(CHINOOK).execute("SELECT GenreId, Name FROM Genre ORDER BY GenreId").fetchall()
    assert sorted((r["GenreId"], r["Name"]) for r in rows) == source


def test_ca_bundle_from_profile_and_flag(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nca_bundle = {tls_server.ca_pem}\n")
    env = tls_server.env(tmp_path / "state", tls_server.https_url, AWS_CONFIG_FILE=str(config))
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/profile/", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "profile/", tree)

    env = tls_server.env(tmp_path / "state2", tls_server.https_url)
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/flag/", "--no-progress",
                 "--ca-bundle", str(tls_server.ca_pem)], env)
    assert p.returncode == 0, p.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "flag/", tree)


@pytest.mark.parametrize("verb", ["upload", "ls-bucket", "ls-buckets"])
def test_untrusted_certificate_is_one_line_exit_2_within_10_s(tls_server: TlsServer, tls_bucket: str, tree: Path,
                                                              tmp_path: Path, verb: str) -> None:
    env = tls_server.env(tmp_path / "state", tls_server.https_url)  # no CA given: the system's trust store
    args = {"upload": ["upload", str(tree), f"s3://{tls_bucket}/x/", "--no-progress"],
            "ls-bucket": ["ls", f"s3://{tls_bucket}/"], "ls-buckets": ["ls"]}[verb]
    started = time.monotonic()
    p = run_cli(args, env, timeout=60)
    elapsed = time.monotonic() - started
    assert p.returncode == 2, p.stderr.decode()
    line = one_line(p)
    assert "certificate is not trusted" in line and "unable to get local issuer certificate" in line, line
    assert tls_server.https_url in line and "--ca-bundle" in line, line
    assert elapsed < 10, elapsed
    assert not list_all(tls_server.boto(), tls_bucket)


def test_wrong_ca_bundle_file_is_named(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path) -> None:
    env = tls_server.env(tmp_path / "state", tls_server.https_url, AWS_CA_BUNDLE=str(tmp_path / "missing.pem"))
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/x/", "--no-progress"], env)
    assert p.returncode == 2
    line = one_line(p)
    assert "missing.pem" in line and "AWS_CA_BUNDLE" in line, line


def test_no_verify_ssl_warns_and_uploads(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path) -> None:
    env = tls_server.env(tmp_path / "state", tls_server.https_url)
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/nv/", "--no-progress", "--no-verify-ssl"], env)
    assert p.returncode == 0, p.stderr.decode()
    err = p.stderr.decode()
    assert err.count("--no-verify-ssl") == 1 and "InsecureRequestWarning" not in err, err
    assert_tree_stored(tls_server, tls_bucket, "nv/", tree)


# ---------------------------------------------------------------- a forward proxy
@dataclass(frozen=True)
class Proxy:
    url: str
    record: Path

    def lines(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    """proxy.py on a free 127.0.0.1 port, with tests/proxy_plugin.py (the proxy-only host, the record)."""
    base = Path(tempfile.mkdtemp(prefix="s3pump-proxy-"))
    record, port_file = base / "record.txt", base / "port"
    env = {**os.environ, "S3PUMP_TEST_PROXY_RECORD": str(record),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
         "--plugins", "tests.proxy_plugin.ProxyOnlyHosts", "--num-workers", "1", "--num-acceptors", "1",
         "--log-file", str(base / "proxy.log")],
        env=env, cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, (base / "proxy.log").read_text() if (base / "proxy.log").exists() else ""
            assert time.monotonic() < deadline, "proxy.py did not start"
            time.sleep(0.1)
        yield Proxy(f"http://127.0.0.1:{int(port_file.read_text().split()[0])}", record)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def test_every_request_goes_through_the_proxy(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path,
                                              proxy: Proxy) -> None:
    """http: each request is one proxied request line. The endpoint's name resolves only in the
    proxy, so a request that went around it would have failed the run."""
    before = len(proxy.lines())
    endpoint = f"http://{PROXY_ONLY_HOST}:{tls_server.s3_port}"
    env = tls_server.env(tmp_path / "state", endpoint, HTTP_PROXY=proxy.url)
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/px/", "--no-progress", "--json"], env)
    assert p.returncode == 0, p.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "px/", tree)
    seen = [line for line in proxy.lines()[before:] if PROXY_ONLY_HOST in line]
    # HeadBucket, the small file's PUT, CreateMultipartUpload, 3 parts of 8 MiB, CompleteMultipartUpload
    puts = [line for line in seen if line.startswith("PUT ")]
    assert len([line for line in puts if "partNumber=" in line]) == 3, seen
    assert any(line.startswith("PUT ") and line.endswith("/px/small.txt") for line in seen), seen
    assert sum(line.startswith("POST ") for line in seen) == 2, seen  # create and complete
    assert any(line.startswith("HEAD ") for line in seen), seen

    # the control plane's botocore client too (the bucket list)
    before = len(proxy.lines())
    ls = run_cli(["ls"], env)
    assert ls.returncode == 0 and tls_bucket in ls.stdout.decode(), ls.stderr.decode()
    assert any(line.startswith("GET ") and PROXY_ONLY_HOST in line for line in proxy.lines()[before:])


def test_an_iceberg_export_sends_its_metadata_through_the_proxy(tls_server: TlsServer, tls_bucket: str,
                                                               tmp_path: Path, proxy: Proxy) -> None:
    """The table's metadata (metadata files, manifest lists, manifests) goes through the run's store like the
    data files: through the proxy to the proxy-only endpoint, which nothing else can reach. The table then
    reads back (straight from the server) row for row."""
    pytest.importorskip("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog

    before = len(proxy.lines())
    endpoint = f"http://{PROXY_ONLY_HOST}:{tls_server.s3_port}"
    env = tls_server.env(tmp_path / "state", endpoint, HTTP_PROXY=proxy.url)
    p = run_cli(["export", str(CHINOOK), f"s3://{tls_bucket}/ice", "--table", "Invoice", "--table-format",
                 "iceberg", "--partition-by", "time:InvoiceDate:month", "--json", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    report = json.loads(p.stdout.decode().splitlines()[-1])
    assert report["rows_exported"] == 412
    seen = [line for line in proxy.lines()[before:] if PROXY_ONLY_HOST in line]
    puts = [line.rsplit("/", 1)[-1] for line in seen if line.startswith("PUT ")]
    assert sum(name.endswith(".metadata.json") for name in puts) == 2, seen  # the creation, the commit
    assert sum(name.startswith("snap-") and name.endswith(".avro") for name in puts) == 1, seen  # manifest list
    assert sum(name.endswith("-m0.avro") for name in puts) == 1, seen  # the manifest
    conn = sqlite3.connect(CHINOOK)
    try:
        months = conn.execute("SELECT COUNT(DISTINCT substr(InvoiceDate, 1, 7)) FROM Invoice").fetchone()[0]
        want = conn.execute("SELECT InvoiceId, CustomerId, BillingCity FROM Invoice ORDER BY InvoiceId").fetchall()
    finally:
        conn.close()
    assert sum(name.endswith(".parquet") for name in puts) == months, seen  # a data file a month
    catalog = SqlCatalog("s3pump", uri=report["iceberg"]["catalog"], **{
        "s3.endpoint": tls_server.http_url, "s3.access-key-id": tls_server.access_key_id,
        "s3.secret-access-key": tls_server.secret_access_key, "s3.region": tls_server.region})
    got = catalog.load_table(report["iceberg"]["table"]).scan().to_arrow().sort_by("InvoiceId")
    assert list(zip(*(got[c].to_pylist() for c in ("InvoiceId", "CustomerId", "BillingCity")), strict=True)) == want


def test_an_iceberg_compaction_reads_its_data_files_through_the_proxy(tls_server: TlsServer, tls_bucket: str,
                                                                     tmp_path: Path, proxy: Proxy) -> None:
    """Batches of 700 rows into 96 KiB files by month: the commit that crosses into February starts it with a small
    file, and the run's end compacts the month's small files. The compaction reads them (GetObject, pyiceberg's scan
    through the run's FileIO) through the proxy to the proxy-only endpoint, like every other request; the table
    then reads back (straight from the server) row for row."""
    pytest.importorskip("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog

    from .test_export_cli import make_events_db

    db = tmp_path / "events.db"
    make_events_db(db, 120_000)  # a row every 37 s from 2025-01-01: January and February
    before = len(proxy.lines())
    env = tls_server.env(tmp_path / "state", f"http://{PROXY_ONLY_HOST}:{tls_server.s3_port}", HTTP_PROXY=proxy.url)
    p = run_cli(["export", str(db), f"s3://{tls_bucket}/icec", "--table", "events", "--table-format", "iceberg",
                 "--partition-by", "time:ts:month", "--batch-rows", "700", "--target-file-size", "96KiB", "--json",
                 "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    report = json.loads(p.stdout.decode().splitlines()[-1])
    assert report["rows_exported"] == 120_000 and report["iceberg"]["files_compacted"] >= 2, report
    catalog = SqlCatalog("s3pump", uri=report["iceberg"]["catalog"], **{
        "s3.endpoint": tls_server.http_url, "s3.access-key-id": tls_server.access_key_id,
        "s3.secret-access-key": tls_server.secret_access_key, "s3.region": tls_server.region})
    table = catalog.load_table(report["iceberg"]["table"])
    added = {e.data_file.file_path for snap in table.snapshots() for m in snap.manifests(table.io)
             for e in m.fetch_manifest_entry(table.io) if e.snapshot_id == snap.snapshot_id}
    replaced = added - {t.file.file_path for t in table.scan().plan_files()}
    assert len(replaced) == report["iceberg"]["files_compacted"], (replaced, report)
    seen = [line for line in proxy.lines()[before:] if PROXY_ONLY_HOST in line]
    read = {line.rsplit("/", 1)[-1] for line in seen if line.startswith("GET ")}
    assert {path.rsplit("/", 1)[-1] for path in replaced} <= read, seen
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 120_001))


def test_https_through_the_proxy_tunnels(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path,
                                         proxy: Proxy) -> None:
    before = len(proxy.lines())
    endpoint = f"https://{PROXY_ONLY_HOST}:{tls_server.https_port}"
    env = tls_server.env(tmp_path / "state", endpoint, HTTPS_PROXY=proxy.url, AWS_CA_BUNDLE=str(tls_server.ca_pem))
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/tun/", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "tun/", tree)
    assert any(line == f"CONNECT {PROXY_ONLY_HOST}:{tls_server.https_port}" for line in proxy.lines()[before:])


def test_no_proxy_is_honoured(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path,
                              proxy: Proxy) -> None:
    before = len(proxy.lines())
    env = tls_server.env(tmp_path / "state", tls_server.http_url, HTTP_PROXY=proxy.url, NO_PROXY="127.0.0.1")
    p = run_cli(["upload", str(tree), f"s3://{tls_bucket}/np/", "--no-progress"], env)
    assert p.returncode == 0, p.stderr.decode()
    ls = run_cli(["ls"], env)
    assert ls.returncode == 0, ls.stderr.decode()
    assert_tree_stored(tls_server, tls_bucket, "np/", tree)
    assert proxy.lines()[before:] == []


@pytest.mark.parametrize("verb", ["upload", "ls-buckets"])
def test_a_proxy_that_is_down_is_named(tls_server: TlsServer, tls_bucket: str, tree: Path, tmp_path: Path,
                                       verb: str) -> None:
    dead = f"http://user:secret@127.0.0.1:{pick_ports(1)[0]}"
    env = tls_server.env(tmp_path / "state", tls_server.http_url, HTTP_PROXY=dead)
    args = ["upload", str(tree), f"s3://{tls_bucket}/dead/", "--no-progress"] if verb == "upload" else ["ls"]
    p = run_cli(args, env, timeout=60)
    assert p.returncode == 2, p.stderr.decode()
    line = one_line(p)
    assert "proxy" in line and dead.rsplit("@", 1)[-1] in line and "secret" not in line, line
