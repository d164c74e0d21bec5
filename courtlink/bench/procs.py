"""Reading a process's CPU time and memory from /proc (Linux), starting processes pinned to a
core with taskset, and stopping them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

__all__ = ["ProcSample", "pin", "sample", "stop"]

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float
    rss_bytes: int


def sample(pid: int, *, children: bool = False) -> ProcSample:
    """CPU time (user + system) and resident memory of ``pid`` (and, optionally, of its
    children, for servers that fork workers)."""
    pids = [pid]
    if children:
        pids += _children(pid)
    cpu, rss = 0.0, 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            with open(f"/proc/{p}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ProcSample(cpu, rss)


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
        except FileNotFoundError:
            continue
    return found


def pin(command: list[str], core: int | None) -> list[str]:
    """``command`` run on one core (taskset), when there is more than one core and taskset."""
    if core is None or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def stop(proc: subprocess.Popen[bytes] | None, wait: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``wait`` seconds."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
