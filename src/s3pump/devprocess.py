"""The local SeaweedFS as a process: is a pid still it, and stopping it with everything it started.

``weed server`` runs in a process group of its own (a new session when detached for
``--embedded``), so a terminal's Ctrl-C reaches only the s3pump process that owns it, which
stops it here, and a stop reaches whatever ``weed`` started.

Shutdown: on SIGTERM ``weed server`` runs its parts' stop hooks one after the other, and the
first, the filer's gRPC graceful stop, waits for the in-process S3 gateway's metadata
subscription until its own 15 s timeout (no flag shortens it; a second signal does nothing). So a
"clean" stop takes 15 s, and :func:`stop_server` sends SIGKILL to the group after ``grace_s``
(2 s). That loses nothing acknowledged: the volume files and the filer's LevelDB journal are
written straight to the kernel (no user-space buffers), and both are read back after a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["STOP_GRACE_S", "is_weed", "pid_alive", "stop_server"]

STOP_GRACE_S = 2.0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still "exists": treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_weed(pid: int) -> bool:
    """Whether ``pid`` is alive and runs ``weed`` (a recorded pid may belong to another program by now:
    after a reboot or a kill -9, ``server.json`` stays). Without /proc, alive is enough."""
    if not pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except PermissionError:
        return False  # not ours
    except OSError:
        return not Path("/proc/self").exists()
    return os.path.basename(argv0) == b"weed"


def _signal_tree(pid: int, sig: int) -> None:
    """``sig`` to ``pid``'s process group if it leads one (what start_server makes), else to ``pid``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_server(proc: subprocess.Popen[bytes] | int, *, grace_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM to the server's process group, SIGKILL to it after ``grace_s``; returns once the
    server is gone. True when SIGTERM alone stopped it. Ctrl-C (KeyboardInterrupt) while it waits:
    SIGKILL at once, then the interrupt goes on."""
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        leads_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        leads_group = False

    def gone() -> bool:
        done = proc.poll() is not None if isinstance(proc, subprocess.Popen) else not pid_alive(pid)
        # the group outlives its leader if weed started children; a zombie leader keeps the group "alive"
        return done and not (leads_group and _group_has_live_member(pid))

    _signal_tree(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    try:
        while time.monotonic() < deadline:
            if gone():
                return True
            time.sleep(0.05)
    except KeyboardInterrupt:
        _kill(proc, pid, leads_group)
        raise
    _kill(proc, pid, leads_group)
    return False


def _kill(proc: subprocess.Popen[bytes] | int, pid: int, leads_group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if leads_group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    if isinstance(proc, subprocess.Popen):
        proc.wait()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (pid_alive(pid) or (leads_group and _group_has_live_member(pid))):
        time.sleep(0.02)


def _group_has_live_member(pgid: int) -> bool:
    """Whether a process other than a zombie is in group ``pgid`` (Linux: from /proc; else killpg's answer)."""
    proc_dir = Path("/proc")
    if not proc_dir.exists():
        return _group_alive(pgid)
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False
