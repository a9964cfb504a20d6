"""A terminal for the tests: a command runs on a pseudo-terminal of a given size (Python's ``pty``),
and what it writes is played on an emulated screen (``pyte``, a VT100 emulator) that the test reads
as a person would read the window. pyte comes from PyPI with the ``test`` extra; tmux, which the
older tests use, does not, and CI's clean machine may lack it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyte

__all__ = ["Terminal"]


class Terminal:
    """``argv`` running on a ``cols`` x ``rows`` pseudo-terminal (stdin, stdout and stderr), its screen
    emulated. Use as a context manager: on exit the process (if still running) is interrupted, then
    killed, and waited for."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, cols: int = 80, rows: int = 24) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}  # the size is the terminal's
        env["TERM"] = "xterm-256color"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self._fd = master
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self.eof = False
        self.samples: list[tuple[float, list[str]]] = []  # (seconds since start, screen lines) after each read

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def _read(self, timeout_s: float) -> None:
        if self.eof:
            time.sleep(min(timeout_s, 0.05))
            return
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout_s))
        if not ready:
            return
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # EIO: every copy of the terminal's other side is closed (the process ended)
            data = b""
        if not data:
            self.eof = True
            return
        self._stream.feed(data)
        self.samples.append((time.monotonic() - self.started, self.lines))

    def wait_for(self, found: Callable[[list[str]], Any], timeout_s: float) -> Any:
        """Read until ``found(lines)`` is truthy (returns it), or ``timeout_s`` passed or the output ended
        (returns the last falsy value)."""
        deadline = time.monotonic() + timeout_s
        result = found(self.lines)
        while not result and time.monotonic() < deadline and not (self.eof and self.proc.poll() is not None):
            self._read(min(0.1, deadline - time.monotonic()))
            result = found(self.lines)
        return result

    def finish(self, timeout_s: float) -> int:
        """Read to the end of the output; the process's exit code."""
        deadline = time.monotonic() + timeout_s
        while not self.eof and time.monotonic() < deadline:
            self._read(min(0.2, deadline - time.monotonic()))
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            os.close(self._fd)
