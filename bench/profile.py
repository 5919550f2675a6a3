"""Where the operator's CPU goes in the burst: py-spy samples it from outside, without pausing it.

``py-spy record --nonblocking --gil --format raw`` writes collapsed stacks (one line per
distinct stack, with its sample count: the input of any flame graph tool, e.g.
``flamegraph.pl`` or speedscope), and :func:`summarise` turns them into the functions that hold
the CPU, by self and by inclusive samples, and by the work each stack was paying for
(:data:`WORK`). ``--gil`` keeps only the thread holding the GIL at
each sample, the one running Python code (waits on sockets and locks release it), so the
samples are the operator's own CPU time. Without py-spy next to the interpreter or on the PATH
the profile is skipped.

py-spy needs a moment to attach (it reads the interpreter's memory maps and symbols), and a
short burst can be over by then, so :class:`Profiler` returns only once py-spy says it is
sampling.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 50  # samples per second: little extra load on a machine that is already busy
ATTACH_TIMEOUT = 60.0  # seconds for py-spy to attach to the operator on a busy machine
SAMPLING = b"py-spy> Sampling process"  # what py-spy prints once it has attached

# What a stack was doing, by the first of these functions found along it (outermost first in
# this order of precedence); a stack with none of them is "other".
WORK: tuple[tuple[str, str], ...] = (
    ("Kubernetes Events (recorder threads)", "_EventWriter._run"),
    ("ML Metadata reads (artifacts)", "RunReconciler._resolve_artifacts"),
    ("run-completion event (NATS publish)", "EventDelivery.deliver"),
    ("run-completion event: the completion-event controller", "CompletionEventReconciler.reconcile"),
    # The operator's only event loop is the NATS client's (kfp_operator.clients.sinks).
    ("run-completion event: the NATS client's loop", "BaseEventLoop.run_forever"),
    ("finalizer patch", "Kube.add_finalizer"),
    ("KFP create", "KfpClient.create_run"),
    ("status patches (run controller)", "RunReconciler._write"),
    ("bulk poll", "KfpRunTracker._loop"),
    ("watch events into the cache", "Reflector.run"),
    ("log lines", "BoundLogger"),
    ("metrics scrapes", "MetricsHandler"),
)


class Profiler:
    """Samples a process with py-spy from the moment it is constructed until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, rate: int = RATE) -> None:
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            return
        self.process = subprocess.Popen(
            [
                *(py_spy, "record", "--nonblocking", "--gil", "--rate", str(rate), "--format", "raw"),
                *("--pid", str(pid), "--output", str(output)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_sampling()

    def _wait_until_sampling(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        printed = b""
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while SAMPLING not in printed and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:  # py-spy exited (it could not attach), or the deadline passed
                break
            printed += chunk
        if SAMPLING not in printed:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> Path | None:
        """Stops sampling; returns the collapsed stacks, or None if there is no profile."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.communicate(timeout=60)  # reads what py-spy prints as it stops
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None
        return self.output if self.output.exists() else None


def summarise(collapsed: Path, rate: int = RATE, top: int = 25) -> dict[str, object]:
    """The functions holding the most samples: by self samples and by inclusive samples."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_work: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        by_work[next((work for work, marker in WORK if marker in stack), "other")] += count
        frames = [_short(frame) for frame in stack.split(";")]
        self_samples[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[dict[str, object]]:
        return [
            {"function": name, "samples": n, "share": round(n / total, 3)}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "rate_hz": rate,
        "by_work": [
            {"work": work, "samples": n, "share": round(n / total, 3)} for work, n in by_work.most_common()
        ],
        "self": share(self_samples),
        "inclusive": share(inclusive),
    }


def summary_text(summary: dict[str, Any], heading: str) -> str:
    """The summary as the text kept next to the collapsed stacks."""
    lines = [heading, "", "Where the CPU went, by the work it paid for (first match along each stack):"]
    lines += [f"{row['share']:7.1%}  {row['work']}" for row in summary["by_work"]]
    lines += ["", "Self samples (the function on top of the stack):"]
    lines += [f"{row['share']:7.1%}  {row['function']}" for row in summary["self"]]
    lines += ["", "Inclusive samples (the function anywhere on the stack):"]
    lines += [f"{row['share']:7.1%}  {row['function']}" for row in summary["inclusive"]]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)": lines split one function into many.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})" if parts else name
