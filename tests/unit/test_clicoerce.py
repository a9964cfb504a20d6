"""The fast option coercion (s3pump.clicoerce) gives exactly Typer's results, without pydantic."""

from __future__ import annotations

import subprocess
import sys

import typer.main
from typer._coercion import build_runtime_param

from s3pump import clicoerce
from s3pump.cli import app

VALUES = [None, "5", "0", "007", "-3", "1.5", "1e3", " 5", "5 ", "", "a/b", "12345678901234567890", ("a", "b"), (),
          ("a",), True, False, 3, 2.5]


def test_every_parameter_coerces_as_typer_does() -> None:
    command = typer.main.get_command(app)
    checked = 0
    for sub in command.commands.values():  # type: ignore[attr-defined]
        for param in sub.params:
            typer_own = build_runtime_param(param.type_descriptor)
            multi = bool(param.multiple or param.nargs == -1)
            for value in VALUES:
                fast = clicoerce.fast_coerce(param.type_descriptor.annotation, value, multi)
                if fast is clicoerce._NOT_FAST:
                    continue
                expected = typer_own.coerce(value, param=param, ctx=None)
                assert type(fast) is type(expected) and fast == expected, (param.name, value, fast, expected)
                checked += 1
    assert checked > 1000


def test_a_command_line_is_parsed_without_pydantic(tmp_path) -> None:
    argv = ["s3pump", "upload", str(tmp_path / "missing"), "s3://b/p/", "--concurrency", "8", "--part-size", "8MiB",
            "--include", "*.txt", "--no-progress"]
    code = (f"import sys\nfrom s3pump.cli import main\nsys.argv = {argv!r}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code, 'pydantic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "exit 2 False", (out.stdout, out.stderr)
    assert "does not exist" in out.stderr


def test_a_bad_number_gets_typers_own_message() -> None:
    code = ("import sys\nfrom s3pump.cli import main\n"
            "sys.argv = ['s3pump', 'upload', '.', 's3://b/p/', '--concurrency', 'many']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "exit 2", (out.stdout, out.stderr)
    assert "--concurrency" in out.stderr
