"""Issue 15: a run whose stderr is not a terminal prints its lines without importing rich (about
40 ms of a no-op sync), and a failure line's key is never read as markup."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import sys
from s3pump.ui.console import PlainConsole, print_failure, say, stderr_console
say("uploaded 3 files")
print_failure(stderr_console(), "failed", "s3://b/[red]x[/] and :smile:")
print(type(stderr_console()).__name__, "rich" in " ".join(sys.modules))
"""


def test_stderr_that_is_not_a_terminal_gets_plain_lines_without_rich() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stderr == "uploaded 3 files\nfailed s3://b/[red]x[/] and :smile:\n"
    assert out.stdout.split() == ["PlainConsole", "False"]


def test_force_color_keeps_rich_and_the_key_is_not_markup() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "FORCE_COLOR": "1", "COLUMNS": "200"})
    assert "s3://b/[red]x[/] and :smile:" in out.stderr  # escaped: shown as written
    assert out.stdout.split() == ["Console", "True"]
