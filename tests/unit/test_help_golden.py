"""Every verb's ``--help`` (and ``s3pump --help``) is exactly its golden file (tests/golden/help/).

The help is rendered in a fresh interpreter with a fixed environment (100 columns, no colour, a dumb
terminal; none of the caller's variables but PATH and PYTHONPATH), so the text does not depend on
the caller's terminal. A change of any flag's name, default, env var, help text, panel or order
shows as a diff. After an intended change, regenerate the files with ``UPDATE_GOLDEN=1`` (not S3PUMP_*: the
tests' conftest drops those)
and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "help"
VERBS = ["upload", "sync", "stream", "export", "cleanup", "generate", "serve", "ls", "verify", "lifecycle", "mb",
         "rb", "versioning"]
_RENDER = """
import json, sys
from typer.testing import CliRunner
from s3pump.cli import app
out = {}
for verb in sys.argv[1:]:
    r = CliRunner().invoke(app, [*verb.split(), "--help"], prog_name="s3pump")
    out[verb] = [r.exit_code, r.output]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rendered() -> dict[str, list]:
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "HOME", "SYSTEMROOT") if k in os.environ}
    env.update(COLUMNS="100", LINES="40", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "-c", _RENDER, "", *VERBS], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
    return json.loads(p.stdout)


@pytest.mark.parametrize("verb", ["", *VERBS])
def test_help_is_its_golden_file(rendered: dict[str, list], verb: str) -> None:
    code, text = rendered[verb]
    assert code == 0, text
    path = GOLDEN / f"{verb or 's3pump'}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs; UPDATE_GOLDEN=1 regenerates"
