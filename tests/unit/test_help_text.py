"""Issue 26: every verb's --help shows no Python type beside a flag (``-h, --help <bool>``), and each
option's default once (``[default: 100000] [default: 100000]`` was printed for some)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

VERBS = ["upload", "stream", "sync", "export", "ls", "verify", "cleanup", "lifecycle", "mb", "rb", "versioning",
         "generate", "serve"]


def _help(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    p = subprocess.run([sys.executable, "-m", "s3pump", *args, "--help"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


@pytest.mark.parametrize("verb", VERBS)
def test_help_has_no_python_types_and_each_default_once(verb: str) -> None:
    text = _help(verb)
    assert "<bool>" not in text, text
    rows = re.split(r"\n\W*(?=--)", text)  # one chunk per option row (a help may wrap over lines)
    doubled = [row.split()[0] for row in rows if row.count("[default") > 1]
    assert doubled == [], doubled


def test_top_level_version_flag_has_no_type() -> None:
    version_rows = [line for line in _help().splitlines() if "--version" in line]
    assert version_rows and all("<bool>" not in line for line in version_rows), version_rows
