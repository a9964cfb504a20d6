"""Run a command and measure it as a benchmark or acceptance test needs: wall time, client CPU
seconds and peak RSS.

Peak RSS is the child's own ``VmHWM`` (the kernel's high-water mark of the process's resident
set, reset at exec), polled every 10 ms. ``ru_maxrss`` from ``wait4`` is not used: after fork it
already includes the pages of the forking parent, so a 20 MB tool run from a 100 MB Python
process would read 100 MB.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

__all__ = ["Measurement", "run_measured"]


@dataclass(frozen=True, slots=True)
class Measurement:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    stderr: bytes

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / 2**20


def _poll_hwm(pid: int, peak_kb: list[int], finished: threading.Event) -> None:
    path = f"/proc/{pid}/status"
    while not finished.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb[0] = max(peak_kb[0], int(line.split()[1]))
                        break
        except OSError:
            return
        finished.wait(0.01)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = subprocess.DEVNULL,
) -> Measurement:
    """Run ``argv`` to completion; stderr is captured (returned), stdout goes to ``stdout``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE)
    peak_kb = [0]
    finished = threading.Event()
    poller = threading.Thread(target=_poll_hwm, args=(proc.pid, peak_kb, finished), daemon=True)
    poller.start()
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    finished.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(proc.returncode, wall, usage.ru_utime + usage.ru_stime, peak_kb[0] * 1024, err)
