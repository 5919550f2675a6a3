"""CPU time by kind of thread (controller.threadcpu)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from controller.metrics import Metrics
from controller.threadcpu import ENDED, METRIC, NATIVE, ThreadCpuCollector, read_task_ns, thread_kind
from kfp_devstack.waiting import wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux only")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("worker-run-3", "worker-run"),
        ("worker-run-completion-event-0", "worker-run-completion-event"),
        ("ThreadPoolExecutor-0_2", "ThreadPoolExecutor"),
        ("reflector-runs.pipelines.kubeflow.org/ml-team-2", "reflector-runs.pipelines.kubeflow.org"),
        ("reflector-runs.pipelines.kubeflow.org", "reflector-runs.pipelines.kubeflow.org"),
        # the thread that fetches a list's next pages, cluster-wide and in a namespace
        ("reflector-runs.pipelines.kubeflow.org_0", "reflector-runs.pipelines.kubeflow.org"),
        ("reflector-runs.pipelines.kubeflow.org/ml-team_0", "reflector-runs.pipelines.kubeflow.org"),
        ("Thread-5 (run_forever)", "Thread"),
        ("Dummy-4", "Dummy"),
        ("MainThread", "MainThread"),
        ("nats-sink", "nats-sink"),
        ("kfp-run-tracker", "kfp-run-tracker"),
        ("gc-freeze", "gc-freeze"),
        ("12", "12"),  # nothing would be left: the name stays
    ],
)
def test_a_thread_is_counted_under_its_name_without_its_index(name: str, kind: str) -> None:
    assert thread_kind(name) == kind


TICK = 10_000_000  # the scripted times are in hundredths of a second


class Threads:
    """Scripted CPU times and Python names, changed between scrapes."""

    def __init__(self) -> None:
        self.ticks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.process: int | None = None  # the whole process's ticks; by default its live threads'

    def collector(self) -> ThreadCpuCollector:
        return ThreadCpuCollector(
            read_threads_ns=lambda: {tid: ticks * TICK for tid, ticks in self.ticks.items()},
            read_process_ns=lambda: (
                TICK * (sum(self.ticks.values()) if self.process is None else self.process)
            ),
            threads=lambda: dict(self.names),
        )


def scrape(collector: ThreadCpuCollector) -> dict[str, float]:
    return {
        sample.labels["thread"]: sample.value
        for family in collector.collect()
        for sample in family.samples
        if sample.name == METRIC
    }


def test_threads_of_a_kind_are_added_up_and_unknown_ones_are_native() -> None:
    threads = Threads()
    threads.ticks = {1: 50, 2: 30, 3: 20, 4: 7}
    threads.names = {1: "MainThread", 2: "worker-run", 3: "worker-run"}
    assert scrape(threads.collector()) == {"MainThread": 0.5, "worker-run": 0.5, NATIVE: 0.07}


def test_a_thread_that_ends_keeps_what_it_used_so_the_counter_never_falls() -> None:
    threads = Threads()
    collector = threads.collector()
    threads.ticks, threads.names = {1: 10, 2: 40}, {1: "MainThread", 2: "worker-run"}
    assert scrape(collector)["worker-run"] == 0.4
    del threads.ticks[2], threads.names[2]
    assert scrape(collector)["worker-run"] == 0.4
    threads.ticks[3], threads.names[3] = 5, "worker-run"
    assert scrape(collector)["worker-run"] == 0.45


def test_a_reused_thread_id_counts_both_threads() -> None:
    threads = Threads()
    collector = threads.collector()
    threads.ticks, threads.names = {7: 40}, {7: "worker-run"}
    scrape(collector)
    # Thread 7 ended between scrapes and a new thread got its id (it has used less so far).
    threads.ticks = {7: 3}
    assert scrape(collector)["worker-run"] == 0.43
    threads.names = {7: "event-recorder"}
    threads.ticks = {7: 1}
    assert scrape(collector) == {"worker-run": 0.43, "event-recorder": 0.01}


def test_a_thread_named_after_it_was_first_seen_is_not_counted_twice() -> None:
    threads = Threads()
    collector = threads.collector()
    threads.ticks = {5: 2}  # started between reading the names and the ticks: no name yet
    assert scrape(collector) == {NATIVE: 0.02}
    threads.names, threads.ticks = {5: "worker-run"}, {5: 10}
    assert scrape(collector) == {NATIVE: 0.02, "worker-run": 0.08}
    threads.ticks = {5: 12}
    assert scrape(collector) == {NATIVE: 0.02, "worker-run": 0.1}


def test_what_threads_used_that_ended_before_a_scrape_is_counted_as_ended() -> None:
    threads = Threads()
    collector = threads.collector()
    threads.ticks, threads.names, threads.process = {1: 10, 2: 40}, {1: "MainThread", 2: "worker-run"}, 50
    assert scrape(collector) == {"MainThread": 0.1, "worker-run": 0.4}
    # A request's thread came and went between two scrapes (3 ticks), and thread 2 used 5 ticks
    # more before it ended.
    threads.ticks, threads.process = {1: 12}, 60
    assert scrape(collector) == {"MainThread": 0.12, "worker-run": 0.4, ENDED: 0.08}
    # The process is read before its threads: their progress in between is not taken back.
    threads.ticks, threads.process = {1: 20}, 66
    assert scrape(collector)[ENDED] == 0.08
    threads.process = 70
    assert scrape(collector)[ENDED] == 0.1


def test_no_threads_read_means_no_series() -> None:
    registry = CollectorRegistry()
    registry.register(Threads().collector())
    assert METRIC not in generate_latest(registry).decode()


def test_the_kernels_times_are_read_in_nanoseconds(tmp_path: Path) -> None:
    # proc(5): schedstat is "time on the CPU (ns), time waiting to run (ns), timeslices run".
    for tid, schedstat in ((11, "1503000123 2000 17"), (12, "8 0 1")):
        (tmp_path / str(tid)).mkdir()
        (tmp_path / str(tid) / "schedstat").write_text(schedstat + "\n")
    (tmp_path / "13").mkdir()  # a thread that ended while the directory was read
    assert read_task_ns(tmp_path) == {11: 1503000123, 12: 8}


def test_live_threads_are_not_taken_for_ended_ones() -> None:
    # Each thread's time in clock ticks would be rounded down, by up to 10 ms a thread: the live
    # threads would add up to less than the process, and the difference would go to "ended".
    collector = ThreadCpuCollector()
    before = scrape(collector).get(ENDED, 0.0)
    done = threading.Event()
    spun = threading.Semaphore(0)

    def spin_then_wait() -> None:
        start = time.thread_time()
        while time.thread_time() - start < 0.015:
            sum(range(1000))
        spun.release()
        done.wait(30)

    threads = [threading.Thread(target=spin_then_wait, name=f"alive-{i}", daemon=True) for i in range(30)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert spun.acquire(timeout=30)
    try:
        after = scrape(collector)
        assert after.get(ENDED, 0.0) - before <= 0.002, after
        assert after["alive"] >= 30 * 0.015
        assert sum(after.values()) <= time.process_time()
    finally:
        done.set()
        for thread in threads:
            thread.join(10)


def test_a_busy_thread_shows_its_own_cpu_time_under_its_kind() -> None:
    collector = ThreadCpuCollector()
    used: list[float] = []
    done = threading.Event()

    def spin() -> None:
        start = time.thread_time()
        while time.thread_time() - start < 0.3:
            sum(range(1000))
        used.append(time.thread_time())
        done.wait(30)

    thread = threading.Thread(target=spin, name="spinner-4", daemon=True)
    thread.start()
    wait_until(lambda: bool(used), timeout=30, message="the spinning thread to use 0.3 s of CPU")
    busy = scrape(collector)["spinner"]
    # The thread's own clock and the kernel's account of it are the same.
    assert abs(busy - used[0]) <= 0.005, (busy, used)
    done.set()
    thread.join(10)
    assert scrape(collector)["spinner"] == busy, "an ended thread keeps what it used"


def _tasks() -> set[str]:
    """The process's threads, native ones included, by task id."""
    return {task.name for task in Path("/proc/self/task").iterdir()}


def test_a_thread_that_ends_between_scrapes_is_counted_as_ended() -> None:
    collector = ThreadCpuCollector()

    def spin(used: list[float]) -> None:
        start = time.thread_time()
        while time.thread_time() - start < 0.3:
            sum(range(1000))
        used.append(time.thread_time())

    # Threads left by earlier tests in this process may end between the two scrapes too, adding
    # their time to "ended": such an attempt says nothing, and is made again.
    for _ in range(5):
        tasks = _tasks()
        before = scrape(collector).get(ENDED, 0.0)
        used: list[float] = []
        thread = threading.Thread(target=spin, args=(used,), name="short-lived", daemon=True)
        thread.start()
        thread.join(30)
        after = scrape(collector)
        if tasks <= _tasks():
            break
    else:
        pytest.fail("other threads kept ending during every attempt")
    assert "short-lived" not in after
    # The process is read first, so the main thread's progress while the threads are read can
    # only make "ended" smaller.
    assert used[0] - 0.01 <= after[ENDED] - before <= used[0] + 0.001, (before, after, used)


def test_the_runtime_metrics_include_the_threads_cpu() -> None:
    text = generate_latest(Metrics().registry).decode()
    assert f'{METRIC}{{thread="MainThread"}}' in text
    assert f"# TYPE {METRIC} counter" in text
