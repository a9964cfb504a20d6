"""Issue 26: ``upload --from-list`` checks every line before anything is sent: a malformed JSON
line or one without ``key`` names its line number, a key outside the command's destination and a
line for another bucket are refused (exit 2, one line, nothing uploaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import S3Env, list_all, run_cli


def good(tmp_path: Path, bucket: str, name: str, key: str) -> str:
    f = tmp_path / name
    f.write_bytes(name.encode() * 10)
    return json.dumps({"source": str(f), "key": key, "bucket": bucket, "error": "x"})


CASES = {
    "malformed JSON": ('{"source": "/tmp/x", "key": ', ["list.jsonl:2", "not a JSON line"]),
    "no key": ('{"source": "/tmp/x", "bucket": "{bucket}"}', ["list.jsonl:2", "\"key\""]),
    "no source": ('{"key": "www/x.txt"}', ["list.jsonl:2", "\"source\""]),
    "key outside the prefix": ('{"source": "{src}", "key": "other/x.txt", "bucket": "{bucket}"}',
                               ["list.jsonl:2", "other/x.txt", "outside"]),
    "key that only shares the prefix's letters": ('{"source": "{src}", "key": "www2/x.txt", "bucket": "{bucket}"}',
                                                  ["list.jsonl:2", "www2/x.txt", "outside"]),
    "another bucket": ('{"source": "{src}", "key": "www/x.txt", "bucket": "someone-elses"}',
                       ["list.jsonl:2", "someone-elses"]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dest_slash", ["www/", "www"])
def test_bad_from_list_line_is_refused_before_anything_is_sent(s3env: S3Env, bucket: str, state_dir: Path,
                                                               tmp_path: Path, case: str, dest_slash: str) -> None:
    line, words = CASES[case]
    src = tmp_path / "x.txt"
    src.write_text("x")
    lst = tmp_path / "list.jsonl"
    lst.write_text(good(tmp_path, bucket, "a.txt", "www/a.txt") + "\n"
                   + line.replace("{bucket}", bucket).replace("{src}", str(src)) + "\n")
    p = run_cli(["upload", "--from-list", str(lst), f"s3://{bucket}/{dest_slash}", "--no-progress"],
                s3env.env(state_dir))
    lines = [x for x in p.stderr.decode().splitlines() if x.strip()]
    assert p.returncode == 2, p.stderr.decode()
    assert len(lines) == 1 and "Traceback" not in lines[0], p.stderr.decode()
    for word in words:
        assert word in lines[0], lines[0]
    assert list_all(s3env.boto(), bucket) == {}


def test_a_good_from_list_uploads_to_its_keys(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    lst = tmp_path / "list.jsonl"
    lst.write_text(good(tmp_path, bucket, "a.txt", "www/a.txt") + "\n"
                   + good(tmp_path, bucket, "b.txt", "www/sub/b.txt") + "\n")
    p = run_cli(["upload", "--from-list", str(lst), f"s3://{bucket}/www/", "--no-progress"], s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    client = s3env.boto()
    assert sorted(list_all(client, bucket)) == ["www/a.txt", "www/sub/b.txt"]
    assert client.get_object(Bucket=bucket, Key="www/sub/b.txt")["Body"].read() == b"b.txt" * 10
