"""CPU time and memory of a process, read from ``/proc`` (Linux only).

* CPU seconds are ``utime + stime`` of ``/proc/PID/stat`` (fields 14 and 15, in clock
  ticks): every thread of the process, user and kernel time.
* ``VmRSS`` is the resident set now, ``VmHWM`` its peak since the process started
  (``/proc/PID/status``, in kB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessSample:
    cpu_seconds: float
    rss_bytes: int
    hwm_bytes: int


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces; fields after its closing parenthesis are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def sample(pid: int) -> ProcessSample:
    rss, hwm = memory(pid)
    return ProcessSample(cpu_seconds=cpu_seconds(pid), rss_bytes=rss, hwm_bytes=hwm)


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two readings."""
    return {name: round(after[name] - before[name], 2) for name in after if name in before}
