"""State files on network filesystems: statfs detection, and the journal and hash cache switching
from WAL to the rollback journal there (NFS is simulated by the detected magic number; the
databases are real)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from s3pump import statefs
from s3pump.etags import file_digest
from s3pump.events import FileDone
from s3pump.hashcache import HashCache
from s3pump.journal import Journal


def test_statfs_reads_the_real_magic_numbers(tmp_path: Path) -> None:
    assert statefs.filesystem_magic("/proc") == 0x9FA0  # PROC_SUPER_MAGIC
    assert statefs.network_filesystem(tmp_path) is None
    assert statefs.network_filesystem(tmp_path / "not" / "yet" / "made") is None  # nearest existing parent
    assert statefs.sqlite_journal_mode(tmp_path / "j.sqlite") == "WAL"


@pytest.fixture
def on_nfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statefs, "filesystem_magic", lambda path: 0x6969)  # NFS_SUPER_MAGIC


def _mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def test_journal_on_a_local_disk_uses_wal(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    assert j.journal_mode == "WAL"
    j.close()
    assert _mode(tmp_path / "j.sqlite") == "wal"


@pytest.mark.parametrize("fs, magic", [("nfs", 0x6969), ("lustre", 0x0BD00BD0), ("gpfs", 0x47504653)])
def test_journal_on_a_network_filesystem_uses_the_rollback_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fs: str, magic: int) -> None:
    monkeypatch.setattr(statefs, "filesystem_magic", lambda path: magic)
    assert statefs.network_filesystem(tmp_path) == fs
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    assert j.journal_mode == "DELETE"
    j.expect("k", 5, 123)
    j(FileDone("src", "k", 5, "etag", 0.1, 1))
    assert not os.path.exists(f"{path}-wal") and not os.path.exists(f"{path}-shm")
    j.close()
    assert _mode(path) == "delete"
    again = Journal(path)  # a rerun sees what the first run recorded
    assert again.is_done("k", 5, 123)
    again.delete()
    assert list(tmp_path.iterdir()) == []


def test_hash_cache_on_a_network_filesystem_uses_the_rollback_journal(tmp_path: Path, on_nfs: None) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 1000)
    cache = HashCache(tmp_path / "cache" / "hashes.sqlite")
    assert cache.enabled
    digest = file_digest(str(data))
    cache.put(str(data), digest)
    cache.flush()
    assert cache.get(str(data), data.stat()) == digest
    cache.close()
    assert _mode(tmp_path / "cache" / "hashes.sqlite") == "delete"
    assert not (tmp_path / "cache" / "hashes.sqlite-wal").exists()
