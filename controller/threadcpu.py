"""CPU time by thread: ``controller_thread_cpu_seconds_total{thread}``.

Python runs one thread at a time under its interpreter lock, so ``process_cpu_seconds_total``
alone does not say what a busy operator is busy with: its workers, a reflector decoding watch
events into the cache, the event recorder, a sink's event loop. When one of them needs a whole
core, what it feeds falls behind (a reflector at 100 % of a core means the cache lags the API
server), and more workers would not help. The kernel keeps each thread's CPU time; this collector
adds it up by thread at each scrape.

The ``thread`` label is the thread's Python name without what makes each thread of a kind unique,
so the label's values are as few as the kinds of threads:

* a trailing index goes: ``worker-run-3`` and ``worker-run-7`` are both ``worker-run``,
  ``ThreadPoolExecutor-0_2`` is ``ThreadPoolExecutor``;
* so does everything from the first ``/``: a reflector named after its resource and namespace
  (``reflector-runs.pipelines.kubeflow.org/ml-team``) counts with the other namespaces';
* Python's default name ``Thread-5 (target)`` loses its index and target: ``Thread``;
* threads that Python does not know, started by native libraries (gRPC's), are ``native``;
* ``ended`` is what threads used that ended before a scrape could count it: all of a short-lived
  thread (the metrics and health servers answer each request on a thread of its own), and a
  long-lived one's last moments.

The times are the scheduler's, in nanoseconds (``/proc/self/task/<tid>/schedstat``, and the
process's own CPU clock, which counts ended threads too), so the kinds add up to the process's
CPU time; each counter only grows: a thread that ends keeps what it was counted with. Per-thread
times in clock ticks (``stat``) would not do: each thread's is rounded down to 10 ms, and over 80
threads that is most of a second the threads would not account for. Linux only: elsewhere the
metric has no series.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

METRIC = "controller_thread_cpu_seconds_total"
NATIVE = "native"
ENDED = "ended"
TASKS = Path("/proc/self/task")

# A trailing index, after "-" or "_", repeated (ThreadPoolExecutor-0_2), and the " (target)"
# Python adds to default names.
_INDEX = re.compile(r"(?:[-_]\d+)+(?: \(.*\))?$")


def thread_kind(name: str) -> str:
    """The ``thread`` label of a thread named ``name`` (module docstring)."""
    kind = _INDEX.sub("", name.split("/", 1)[0])
    return kind or name


def python_threads() -> dict[int, str]:
    """The kernel's id of each live Python thread, with its label."""
    return {t.native_id: thread_kind(t.name) for t in threading.enumerate() if t.native_id is not None}


def read_task_ns(tasks: Path = TASKS) -> dict[int, int]:
    """Each thread's CPU time so far in nanoseconds, by the kernel's thread id: the first field of
    its ``schedstat`` (proc(5)). A thread that ends while it is read is left out."""
    used: dict[int, int] = {}
    try:
        entries = list(os.scandir(tasks))
    except OSError:
        return used
    for entry in entries:
        try:
            used[int(entry.name)] = int(Path(entry.path, "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return used


class ThreadCpuCollector(Collector):
    """Collects :data:`METRIC`; register it once per process."""

    def __init__(
        self,
        *,
        read_threads_ns: Callable[[], Mapping[int, int]] = read_task_ns,
        read_process_ns: Callable[[], int] = time.process_time_ns,
        threads: Callable[[], Mapping[int, str]] = python_threads,
    ) -> None:
        self._read_threads_ns = read_threads_ns
        self._read_process_ns = read_process_ns
        self._threads = threads
        self._lock = threading.Lock()
        # Each live thread's label, its time at the last scrape, and how much of that was
        # counted under another label (before it was renamed); what ended threads used, by label.
        self._seen: dict[int, tuple[str, int, int]] = {}
        self._ended: dict[str, int] = {}
        self._uncounted = 0  # what threads used that ended before a scrape counted it

    def describe(self) -> Iterable[Metric]:
        return [_family()]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            totals = self._totals()
        if not totals:
            return []
        family = _family()
        for kind in sorted(totals):
            family.add_metric([kind], totals[kind] / 1e9)
        return [family]

    def _totals(self) -> dict[str, int]:
        # The process first: read before the threads, it can only be less than what they add up
        # to (with the ended ones), never more, so what is left over is no more than what ended
        # threads used uncounted. Names before times: a thread started between the two reads has
        # a time but no name yet, and is counted as native until the next scrape finds its name.
        process = self._read_process_ns()
        names = self._threads()
        times = self._read_threads_ns()
        seen: dict[int, tuple[str, int, int]] = {}
        for tid, used in times.items():
            kind = names.get(tid, NATIVE)
            base = 0
            previous = self._seen.get(tid)
            if previous is not None:
                previous_kind, previous_used, previous_base = previous
                if used < previous_used:
                    # Another thread under a reused id: the ended one keeps what it used.
                    self._end(previous_kind, previous_used - previous_base)
                elif previous_kind != kind:
                    # Renamed (or named since): what it used so far stays where it was counted.
                    self._end(previous_kind, previous_used - previous_base)
                    base = previous_used
                else:
                    base = previous_base
            seen[tid] = (kind, used, base)
        for tid, (kind, used, base) in self._seen.items():
            if tid not in times:
                self._end(kind, used - base)
        self._seen = seen
        totals = dict(self._ended)
        for kind, used, base in seen.values():
            totals[kind] = totals.get(kind, 0) + used - base
        if totals:
            self._uncounted = max(self._uncounted, process - sum(totals.values()))
            if self._uncounted:
                totals[ENDED] = totals.get(ENDED, 0) + self._uncounted
        return totals

    def _end(self, kind: str, used: int) -> None:
        self._ended[kind] = self._ended.get(kind, 0) + used


def _family() -> CounterMetricFamily:
    return CounterMetricFamily(
        METRIC.removesuffix("_total"),
        "CPU time used by the operator's threads, by kind of thread (a thread's name without its "
        "index; native: threads started by native libraries; ended: what threads used that ended "
        "before a scrape counted it).",
        labels=["thread"],
    )
