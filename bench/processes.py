"""The processes a benchmark starts, and how they are stopped: by PID, with everything below them,
never by name, and never a process that merely reuses a PID we saw (start times are compared).

Every child is started in a session of its own (`start_new_session=True`), so a signal meant for the
benchmark's terminal does not reach it half-way through, and `track`ed here, so that however the
benchmark ends — a signal included (bench/shutdown.py) — `stop_tracked` stops whatever still runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, TypeVar

GRACE_SECONDS = 10.0

Process = TypeVar("Process", bound="subprocess.Popen[Any]")
_tracked: list[subprocess.Popen[Any]] = []


def track(process: Process) -> Process:
    """Note a child this benchmark started, so `stop_tracked` stops it if nothing else does."""
    _tracked.append(process)
    return process


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), so a stack's children can be stopped even if they
    started their own sessions and outlive their parent."""
    found: list[int] = []
    for child_file in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in child_file.read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state first, start time at index 19); None once gone."""
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return None


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields is not None else None


def _running(pid: int, started: str) -> bool:
    """The same process (same start time) and not a zombie: a zombie has exited already."""
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] not in ("Z", "X")


def stop_leftovers(pids: list[int], leaders: list[subprocess.Popen[Any]] | None = None) -> None:
    """SIGTERM, then SIGKILL after GRACE_SECONDS, to those of `pids` (ours) still running, and to the
    process groups of `leaders` (ours, each its own session) while they have not been reaped."""
    seen = {pid: started for pid in pids if (started := _start_time(pid)) is not None}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for leader in leaders or []:
            if leader.poll() is None:  # not reaped, so its PID (and group ID) is still its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(leader.pid, sig)
        for pid, started in seen.items():
            if _running(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            leaders_up = [leader for leader in leaders or [] if leader.poll() is None]
            if not leaders_up and not any(_running(pid, started) for pid, started in seen.items()):
                return
            time.sleep(0.05)


def stop_tracked() -> None:
    """Stop every tracked process still running and everything below it. The tree is read before any
    signal is sent: a child (`gennaker dev`'s Temporal server) may sit in a session of its own and
    would be orphaned, out of reach, once its parent had gone."""
    running = [process for process in _tracked if process.poll() is None]
    if running:
        stop_leftovers([pid for process in running for pid in (process.pid, *descendants(process.pid))], running)
    _tracked[:] = [process for process in _tracked if process.poll() is None]
