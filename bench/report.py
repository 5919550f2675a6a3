"""The result of a bench run: ratios against the same-run baselines, the table, the JSON file.

Figures that depend on the machine's speed (times, CPU) are paired with the baseline
measured in the same run and reported as ``operator / baseline``; counts (requests
per Run) and sizes (bytes per Run) are reported as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.scenarios.burst import BurstResult
from bench.scenarios.cache import CacheResult
from bench.scenarios.capacity import CapacityResult
from bench.scenarios.common import ratio
from bench.scenarios.floor import FloorResult
from bench.scenarios.idle_rc import IdleRunConfigurationsResult
from bench.scenarios.peer import PeerBurstResult, PeerMemoryResult
from bench.scenarios.steady import SteadyResult


@dataclass
class BenchResult:
    started_at: str
    duration_seconds: float
    machine: dict[str, Any]
    configuration: dict[str, Any]
    burst: BurstResult
    floor: FloorResult  # the burst's baseline
    steady: SteadyResult
    cache: CacheResult
    capacity: CapacityResult | None  # None with --no-capacity
    idle_run_configurations: IdleRunConfigurationsResult | None  # None with --no-idle-rc
    kopf_burst: PeerBurstResult | None  # None with --no-kopf
    kopf_memory: PeerMemoryResult | None
    ratios: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute_ratios(result: BenchResult) -> dict[str, float | None]:
    steady, cache = result.steady, result.cache
    ratios = {
        **_burst_ratios(result.burst, result.floor),
        # Idle CPU per minute, in Runs' worth of the operator's own burst CPU per Run.
        "steady_cpu_per_minute_in_runs": ratio(
            steady.operator_cpu_seconds_per_minute * 1000, result.burst.operator_cpu_ms_per_run
        ),
        "restart_ready_vs_floor": ratio(cache.restart_ready_seconds, cache.restart_floor_seconds),
        "restart_reconciled_vs_floor": ratio(cache.restart_reconciled_seconds, cache.restart_floor_seconds),
    }
    if result.capacity is not None:
        # The operator's burst submission against KFP's own capacity for N creates.
        ratios["all_submitted_vs_kfp_capacity"] = ratio(
            result.burst.all_submitted_seconds, result.capacity.create_seconds
        )
        ratios["floor_submitted_vs_kfp_capacity"] = ratio(
            result.floor.all_submitted_seconds, result.capacity.create_seconds
        )
    if result.kopf_burst is not None:
        ratios.update(_kopf_ratios(result))
    return ratios


def _kopf_ratios(result: BenchResult) -> dict[str, float | None]:
    burst, kopf, cache, memory = result.burst, result.kopf_burst, result.cache, result.kopf_memory
    assert kopf is not None
    ratios = {
        "all_submitted_vs_kopf": ratio(burst.all_submitted_seconds, kopf.all_submitted_seconds),
        "all_completed_vs_kopf": ratio(burst.all_completed_seconds, kopf.all_completed_seconds),
        "cpu_per_run_vs_kopf": ratio(burst.operator_cpu_ms_per_run, kopf.cpu_ms_per_run),
        "api_requests_per_run_vs_kopf": ratio(
            burst.api_reads_per_run + burst.api_writes_per_run,
            kopf.api_reads_per_run + kopf.api_writes_per_run,
        ),
    }
    if memory is not None:
        ratios["rss_empty_vs_kopf"] = ratio(cache.rss_empty_bytes, memory.rss_empty_bytes)
        ratios["rss_cached_vs_kopf"] = ratio(cache.rss_cached_bytes, memory.rss_cached_bytes)
    return ratios


def _burst_ratios(burst: BurstResult, floor: FloorResult) -> dict[str, float | None]:
    latency, floor_latency = burst.submission_latency_seconds, floor.submission_latency_seconds
    return {
        "all_submitted_vs_floor": ratio(burst.all_submitted_seconds, floor.all_submitted_seconds),
        "all_completed_vs_floor": ratio(burst.all_completed_seconds, floor.all_completed_seconds),
        **{
            f"submission_latency_{q}_vs_floor": ratio(latency[q], floor_latency[q])
            for q in ("p50", "p95", "p99")
        },
        "cpu_per_run_vs_floor": ratio(burst.operator_cpu_ms_per_run, floor.cpu_ms_per_run),
    }


def find_problems(result: BenchResult) -> list[str]:
    """Operator behaviour the figures show to be wrong (the bench reports, it does not judge speed)."""
    problems = _burst_problems(result.burst)
    steady, cache = result.steady, result.cache
    if steady.api_writes_per_minute_excluding_leases:
        problems.append(
            f"steady state: {steady.api_writes_per_minute_excluding_leases} API writes/min other than "
            f"Lease renewals: {steady.api_writes_per_minute_by_resource}"
        )
    if steady.kfp_calls_per_poll_cycle >= 2 and steady.kfp_calls_per_poll_cycle_settling is not None:
        # One list call per poll once no run finished within the look-back; more means pages.
        problems.append(
            f"steady state: {steady.kfp_calls_per_poll_cycle} KFP list calls per bulk poll while no run "
            f"changed in {steady.seconds_since_last_completion:.0f} s"
        )
    if steady.mlmd_calls:
        problems.append(f"steady state: {steady.mlmd_calls} MLMD calls")
    if cache.restart_kfp_calls:
        problems.append(f"restart: KFP calls with only completed Runs: {cache.restart_kfp_calls}")
    if cache.restart_api_writes_excluding_leases:
        problems.append(
            f"restart: API writes other than Lease renewals: {cache.restart_api_writes_by_resource}"
        )
    if cache.restart_api_failed_requests:
        problems.append(f"restart: failed API requests: {cache.restart_api_failed_requests}")
    return problems


def _burst_problems(burst: BurstResult) -> list[str]:
    problems = []
    once = burst.exactly_once
    if once["runsWithSeveralKfpRuns"] or once["runsWithoutKfpRun"]:
        problems.append(f"burst: exactly-once violated: {once}")
    for reason in ("Submitted", "Succeeded"):
        recorded = burst.kubernetes_events.get(reason, 0)
        if recorded < burst.runs:
            problems.append(
                f"burst: {burst.runs - recorded} of {burst.runs} {reason} Kubernetes Events were never "
                f"written; the operator counted {burst.events_dropped} Events dropped"
            )
    if set(burst.completion_states) != {"Succeeded"}:
        problems.append(f"burst: completion states {burst.completion_states} (all runs succeed in KFP)")
    for what, failed in (
        ("failed API server requests", burst.api_failed_requests),
        ("failed KFP requests", burst.kfp_failed_requests),
        ("reconcile errors", {k: v for k, v in burst.reconcile_errors.items() if v}),
    ):
        if failed:
            problems.append(f"burst: {what}: {failed}")
    return problems


Row = tuple[str, str, str, str]


def table(result: BenchResult) -> str:
    rows = [
        *_burst_rows(result.burst, result.floor, result.ratios),
        *_steady_rows(result.steady, result.ratios),
        *_cache_rows(result.cache, result.ratios),
        *_capacity_rows(result),
        *_kopf_rows(result),
        *(_idle_rc_rows(result.idle_run_configurations) if result.idle_run_configurations else []),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines: list[str] = []
    for row in rows:
        if row[0] and lines:
            lines.append("")
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _burst_rows(b: BurstResult, f: FloorResult, r: dict[str, Any]) -> list[Row]:
    lat, flat = b.submission_latency_seconds, f.submission_latency_seconds
    once = b.exactly_once
    return [
        ("Burst", f"N = {b.runs} Runs created at once", "operator", "floor (operator / floor)"),
        ("", "time until all submitted", _s(b.all_submitted_seconds),
         _vs(f.all_submitted_seconds, r["all_submitted_vs_floor"])),
        ("", "time until all Succeeded", _s(b.all_completed_seconds),
         _vs(f.all_completed_seconds, r["all_completed_vs_floor"])),
        ("", "time until all events delivered", _s(b.all_events_delivered_seconds), "-"),
        *[
            ("", f"creation-to-submission {q}", _s(lat[q]),
             _vs(flat[q], r[f"submission_latency_{q}_vs_floor"]))
            for q in ("p50", "p95", "p99")
        ],
        ("", "API reads per Run (GET, LIST, WATCH)", f"{b.api_reads_per_run:g}", "-"),
        ("", "API writes per Run", f"{b.api_writes_per_run:g}", "2 (two status patches)"),
        ("", "KFP calls per Run", f"{b.kfp_calls_per_run:g}", f"{f.kfp_calls_per_run:g}"),
        ("", "MLMD calls per Run", f"{b.mlmd_calls_per_run:g}", "0 (reads no artifacts)"),
        ("", "CPU per Run", f"{b.operator_cpu_ms_per_run:g} ms",
         f"{f.cpu_ms_per_run:g} ms (x{r['cpu_per_run_vs_floor']})"),
        ("", "  by thread (ms)", _by_thread(b.cpu_ms_per_run_by_thread), "-"),
        ("", "peak RSS (VmHWM)", _mib(b.operator_peak_rss_bytes), "-"),
        ("", "run workers busy (utilisation)", f"{b.run_worker_utilisation:.0%}", "-"),
        ("", "CPU s: operator | API server | emulator", _cpu(b.cpu_seconds_by_process, "operator"),
         _cpu(f.cpu_seconds_by_process, "floor")),
        ("", "extra / missing KFP runs", f"{once['extraKfpRuns']} / {once['runsWithoutKfpRun']}", "-"),
    ]  # fmt: skip


def _steady_rows(s: SteadyResult, r: dict[str, Any]) -> list[Row]:
    return [
        ("Steady", f"{s.completed_runs} completed + {s.running_runs} running Runs",
         f"{s.window_seconds:g} s window", ""),
        ("", "API writes per minute (all)", f"{s.api_writes_per_minute:g}", "-"),
        ("", "API writes per minute excl. Leases", f"{s.api_writes_per_minute_excluding_leases:g}", "-"),
        ("", "API reads per minute", f"{s.api_reads_per_minute:g}", "-"),
        ("", f"KFP calls per poll cycle ({s.poll_interval_seconds:g} s)",
         f"{s.kfp_calls_per_poll_cycle:g}", "-"),
        ("", "KFP calls per poll cycle, settling", _opt(s.kfp_calls_per_poll_cycle_settling),
         f"bulk poll only, over {s.settling_seconds:g} s while the burst's runs were in the look-back "
         f"({_opt(s.kfp_calls_per_poll_cycle_settling_all_routes)} with lookups)"),
        ("", "CPU per minute", f"{s.operator_cpu_seconds_per_minute:g} s",
         f"= CPU of {r['steady_cpu_per_minute_in_runs']} burst Runs"),
    ]  # fmt: skip


def _cache_rows(c: CacheResult, r: dict[str, Any]) -> list[Row]:
    return [
        ("Memory", f"M = {c.cached_runs} completed Runs cached", "operator", ""),
        ("", "RSS with 0 Runs", _mib(c.rss_empty_bytes), "-"),
        ("", "RSS with M Runs", _mib(c.rss_cached_bytes), "-"),
        ("", "RSS per cached Run", f"{c.rss_bytes_per_run:,.0f} B",
         f"JSON {c.json_bytes_per_run:,.0f} B (x{c.rss_to_json_ratio})"),
        ("Restart", f"with M = {c.cached_runs} completed Runs, median of {len(c.rounds)}",
         "operator", "restart floor (ratio)"),
        ("", "start to ready (readyz, leader)", _s(c.restart_ready_seconds),
         _vs(c.restart_floor_seconds, r["restart_ready_vs_floor"])),
        ("", "start to all Runs reconciled", _s(c.restart_reconciled_seconds),
         _vs(c.restart_floor_seconds, r["restart_reconciled_vs_floor"])),
        ("", "the API server alone: one list, not decoded", "-", _s(c.apiserver_list_seconds)),
        ("", "each round: ready | floor | API server alone", _each(r.ready_seconds for r in c.rounds),
         f"{_each(r.floor_seconds for r in c.rounds)} | {_each(r.apiserver_list_seconds for r in c.rounds)}"),
        ("", "KFP calls", str(sum(c.restart_kfp_calls.values())), "0"),
        ("", "API writes excl. Lease", f"{c.restart_api_writes_excluding_leases:g}", "0"),
    ]  # fmt: skip


def _capacity_rows(result: BenchResult) -> list[Row]:
    c, r = result.capacity, result.ratios
    if c is None:
        return []
    sweep = ", ".join(f"{k}: {v:g}/s" for k, v in c.creates_per_second_by_concurrency.items())
    return [
        ("KFP", f"N = {c.runs} creates straight to KFP", "KFP alone", "operator | floor (vs KFP)"),
        ("", "creates per second by concurrency", sweep, ""),
        ("", f"N creates at the best concurrency ({c.best_concurrency})", _s(c.create_seconds),
         f"{_s(result.burst.all_submitted_seconds)} (x{r['all_submitted_vs_kfp_capacity']}) | "
         f"{_s(result.floor.all_submitted_seconds)} (x{r['floor_submitted_vs_kfp_capacity']})"),
    ]  # fmt: skip


def _kopf_rows(result: BenchResult) -> list[Row]:
    k, m, b, c, r = result.kopf_burst, result.kopf_memory, result.burst, result.cache, result.ratios
    if k is None:
        return []
    rows: list[Row] = [
        ("kopf", "the floor's behaviour as a kopf operator", "operator", "kopf (operator / kopf)"),
        (
            "",
            "burst: time until all submitted",
            _s(b.all_submitted_seconds),
            _vs(k.all_submitted_seconds, r["all_submitted_vs_kopf"]),
        ),
        (
            "",
            "burst: time until all Succeeded",
            _s(b.all_completed_seconds),
            _vs(k.all_completed_seconds, r["all_completed_vs_kopf"]),
        ),
        (
            "",
            "burst: CPU per Run",
            f"{b.operator_cpu_ms_per_run:g} ms",
            f"{k.cpu_ms_per_run:g} ms (x{r['cpu_per_run_vs_kopf']})",
        ),
        (
            "",
            "burst: API requests per Run (reads + writes)",
            f"{b.api_reads_per_run:g} + {b.api_writes_per_run:g}",
            f"{k.api_reads_per_run:g} + {k.api_writes_per_run:g} (x{r['api_requests_per_run_vs_kopf']})",
        ),
    ]
    if m is not None:
        rows += [
            (
                "",
                "RSS with 0 Runs",
                _mib(c.rss_empty_bytes),
                f"{_mib(m.rss_empty_bytes)} (x{r['rss_empty_vs_kopf']})",
            ),
            (
                "",
                f"RSS with M = {m.cached_runs} Runs",
                _mib(c.rss_cached_bytes),
                f"{_mib(m.rss_cached_bytes)} (x{r['rss_cached_vs_kopf']})",
            ),
        ]
    return rows  # fmt: skip


def _idle_rc_rows(i: IdleRunConfigurationsResult) -> list[Row]:
    return [
        ("Idle RCs", f"{i.run_configurations} RunConfigurations, none due",
         f"{i.window_seconds:g} s window", ""),
        ("", "API requests per minute excl. Leases", f"{i.api_requests_per_minute_excluding_leases:g}", "-"),
        ("", "KFP calls per minute", f"{i.kfp_calls_per_minute:g}", "-"),
        ("", "CPU per minute", f"{i.operator_cpu_seconds_per_minute:g} s", "-"),
    ]  # fmt: skip


def write_json(result: BenchResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n")


def _by_thread(ms_per_run: dict[str, float], shown: int = 4) -> str:
    """The kinds of thread that used the most CPU per Run (given largest first), then the rest
    together."""
    if not ms_per_run:
        return "-"
    ranked = list(ms_per_run.items())
    parts = [f"{kind.removesuffix('.pipelines.kubeflow.org')} {ms:g}" for kind, ms in ranked[:shown]]
    rest = sum(ms for _, ms in ranked[shown:])
    if rest:
        parts.append(f"other {rest:.2f}")
    return ", ".join(parts)


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s"


def _each(seconds: Iterable[float]) -> str:
    return ", ".join(f"{value:.3g}" if value < 10 else f"{value:.1f}" for value in seconds)


def _vs(baseline: float, value: float | None) -> str:
    return f"{_s(baseline)} (x{value})"


def _cpu(by_process: dict[str, float], controller: str) -> str:
    return " | ".join(
        f"{by_process.get(name, 0):.1f}" for name in (controller, "kube-apiserver", "kfp-emulator")
    )


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
