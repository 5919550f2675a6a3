"""``make bench`` end to end at a tiny scale: it runs, and its JSON holds every figure."""

from __future__ import annotations

import dataclasses
import gzip
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import QUICK_RESTART_ROUNDS
from bench.profile import WORK
from bench.report import BenchResult
from bench.scenarios.burst import BurstResult
from bench.scenarios.cache import CacheResult
from bench.scenarios.capacity import CapacityResult
from bench.scenarios.floor import FloorResult
from bench.scenarios.idle_rc import IdleRunConfigurationsResult
from bench.scenarios.peer import PeerBurstResult, PeerMemoryResult
from bench.scenarios.steady import SteadyResult
from kfp_devstack.binaries import PROJECT_ROOT

SECTIONS = {
    "burst": BurstResult,
    "floor": FloorResult,
    "steady": SteadyResult,
    "cache": CacheResult,
    "capacity": CapacityResult,
    "idle_run_configurations": IdleRunConfigurationsResult,
    "kopf_burst": PeerBurstResult,
    "kopf_memory": PeerMemoryResult,
}

# --quick does not wait five minutes for the burst's runs to leave the bulk poll's look-back.
NOT_MEASURED_WHEN_QUICK = {
    ("steady", "kfp_calls_per_poll_cycle_settling"),
    ("steady", "kfp_calls_per_poll_cycle_settling_all_routes"),
}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    work = tmp_path_factory.mktemp("bench")
    json_path = work / "result.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(json_path), "--work-dir", str(work / "run")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert completed.returncode == 0, f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr[-4000:]}"
    return completed, json.loads(Path(json_path).read_text())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_figure_is_in_the_json(bench_run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, result = bench_run
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            assert field.name in result[section], f"{section}.{field.name} is missing"
            if (section, field.name) not in NOT_MEASURED_WHEN_QUICK:
                assert result[section][field.name] is not None, f"{section}.{field.name} is not measured"
    assert result["ratios"], "no ratios against the baselines"
    assert all(value is not None for value in result["ratios"].values()), result["ratios"]
    for field in dataclasses.fields(BenchResult):
        assert field.name in result, field.name


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_json_records_the_configuration_and_the_machine(
    bench_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    _, result = bench_run
    options = result["configuration"]["options"]
    assert (options["runs"], options["cache_runs"]) == (20, 200)
    assert result["configuration"]["emulator"]["pendingSeconds"] > 0
    assert result["configuration"]["operatorConfig"]["workers"] >= 1
    assert {"cpuModel", "cores", "memoryBytes", "python", "kernel"} <= set(result["machine"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_figures_are_plausible(bench_run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, result = bench_run
    burst, floor = result["burst"], result["floor"]
    assert burst["completion_states"] == {"Succeeded": 20}
    assert burst["exactly_once"]["runsWithoutKfpRun"] == 0
    assert 0 < burst["all_submitted_seconds"] <= burst["all_completed_seconds"]
    assert floor["all_submitted_seconds"] <= floor["all_completed_seconds"]
    # Every Run costs at least its KFP create and its two status writes.
    assert burst["kfp_calls_per_run"] >= 1 and burst["api_writes_per_run"] >= 2
    assert result["cache"]["json_bytes_per_run"] > 0 and result["cache"]["rss_cached_bytes"] > 0
    # The restart is measured in rounds, and its times are the rounds' medians.
    rounds = result["cache"]["rounds"]
    assert len(rounds) == QUICK_RESTART_ROUNDS
    medians = {"restart_ready_seconds": "ready_seconds", "restart_floor_seconds": "floor_seconds"}
    for figure, each in medians.items():
        assert result["cache"][figure] == round(statistics.median(r[each] for r in rounds), 3), figure
    assert all(0 < r["ready_seconds"] <= r["reconciled_seconds"] for r in rounds), rounds
    # Each restart's CPU by kind of thread: the start (imports, on the main thread) is among it.
    for r in rounds:
        assert "MainThread" in r["cpu_seconds_by_thread"], r
        assert sum(r["cpu_seconds_by_thread"].values()) <= r["cpu_seconds"] + 0.05, r
    # KFP's capacity is measured at every concurrency of the sweep.
    capacity = result["capacity"]
    assert capacity["runs"] == 20 and capacity["create_seconds"] > 0
    assert str(capacity["best_concurrency"]) in capacity["creates_per_second_by_concurrency"]
    # The kopf peer submits and completes the same Runs, with its own status patches.
    kopf = result["kopf_burst"]
    assert kopf["runs"] == 20 and 0 < kopf["all_submitted_seconds"] <= kopf["all_completed_seconds"]
    assert kopf["api_writes_per_run"] >= 2 and kopf["kfp_calls_per_run"] >= 1
    assert result["kopf_memory"]["rss_cached_bytes"] > 0
    # Idle RunConfigurations create no Run and call nothing.
    idle = result["idle_run_configurations"]
    assert idle["run_configurations"] == 20 and idle["runs_created"] == 0
    assert idle["api_requests_per_minute_excluding_leases"] == 0
    # The burst's CPU by kind of thread (the operator's own counters) names the run workers, and
    # adds up to no more than the process's CPU (that one read in clock ticks, a moment after each scrape).
    by_thread = burst["cpu_ms_per_run_by_thread"]
    assert "worker-run" in by_thread, by_thread
    assert sum(by_thread.values()) * burst["runs"] <= burst["operator_cpu_seconds"] * 1000 + 50, by_thread
    # The burst's profile names the operator's own code.
    assert result["burst"]["profile"]["samples"] > 0
    assert any("controller/" in f["function"] for f in result["burst"]["profile"]["inclusive"])
    # Every sample is counted once by the work it paid for (a short burst samples too few to
    # name which works appear).
    by_work = result["burst"]["profile"]["by_work"]
    assert sum(row["samples"] for row in by_work) == result["burst"]["profile"]["samples"]
    assert {row["work"] for row in by_work} <= {work for work, _ in WORK} | {"other"}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_profile_is_kept_next_to_the_json(
    bench_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    completed, result = bench_run
    kept = Path(completed.stdout.rpartition("JSON: ")[2].strip()).parent
    assert result["burst"]["profile_file"] == "result.burst-profile.collapsed.gz"
    with gzip.open(kept / "result.burst-profile.collapsed.gz", "rt") as collapsed:
        assert collapsed.readline().rstrip().rpartition(" ")[2].isdigit(), "collapsed stacks: stack count"
    summary = (kept / "result.burst-profile.txt").read_text()
    assert "Where the CPU went, by the work it paid for" in summary


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_table_is_printed_with_the_json_path(
    bench_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    completed, _ = bench_run
    assert "time until all submitted" in completed.stdout
    assert "JSON:" in completed.stdout
