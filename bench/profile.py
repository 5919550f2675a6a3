"""Where the operator's CPU goes in the burst: py-spy samples it from outside, without pausing it.

``py-spy record --nonblocking --gil --format raw`` writes collapsed stacks (one line per
distinct stack, with its sample count: the input of any flame graph tool, e.g.
``flamegraph.pl`` or speedscope), and :func:`summarise` turns them into the functions that hold
the CPU, by self and by inclusive samples, and by the work each stack was paying for
(:data:`WORK`). ``--gil`` keeps only the thread holding the GIL at
each sample, the one running Python code (waits on sockets and locks release it), so the
samples are the operator's own CPU time. Without py-spy next to the interpreter or on the PATH
the profile is skipped.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 50  # samples per second: little extra load on a machine that is already busy

# What a stack was doing, by the first of these functions found along it (outermost first in
# this order of precedence); a stack with none of them is "other".
WORK: tuple[tuple[str, str], ...] = (
    ("Kubernetes Events (recorder thread)", "EventRecorder._run"),
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
    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            return
        self.process = subprocess.Popen(
            [
                *(py_spy, "record", "--nonblocking", "--gil", "--rate", str(RATE), "--format", "raw"),
                *("--pid", str(pid), "--output", str(output)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Path | None:
        """Stops sampling; returns the collapsed stacks, or None if there is no profile."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None
        return self.output if self.output.exists() else None


def summarise(collapsed: Path, top: int = 25) -> dict[str, object]:
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
        "rate_hz": RATE,
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
