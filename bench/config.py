"""What a bench run does: its scale, the emulated run timings, and the operator's configuration.

The operator runs with its defaults except for what the bench must set (where KFP,
MLMD, NATS and the API server are; which namespace it watches; where its metrics and
probes listen), :data:`OPERATOR_SETTINGS`, and ``--kube-qps`` when given, so the
figures describe what users get out of the box. All of it is recorded in the JSON result.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.profile import RATE
from bench.stack import EVENTS_SUBJECT_PREFIX, BenchStack, EmulatorTimings

DEFAULT_RUNS = 1_000
DEFAULT_CACHE_RUNS = 10_000
DEFAULT_RESTART_ROUNDS = 3
QUICK_RESTART_ROUNDS = 2  # the smoke test goes through the medians too
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The defaults when the log is not a terminal, set explicitly so that the record shows them.
OPERATOR_SETTINGS: dict[str, Any] = {
    "log": {"format": "json", "level": "info"},
}
# --quick shortens the poll interval, so a completion is seen within half a second, not ten.
QUICK_OPERATOR_SETTINGS: dict[str, Any] = {"pollInterval": "0.5s"}
QUICK_PROFILE_RATE = 250


@dataclass(frozen=True)
class BenchOptions:
    runs: int = DEFAULT_RUNS  # N: Runs in the burst, the floor and each half of the steady state
    cache_runs: int = DEFAULT_CACHE_RUNS  # M: completed Runs in the cache (memory, restart)
    quick: bool = False
    json_path: Path | None = None
    work_dir: Path | None = None
    timings: EmulatorTimings = field(default_factory=lambda: EmulatorTimings(0.5, 0.2))
    steady_window_seconds: float = 60.0
    # How long the operator must make no Run or Event write to count as quiet.
    quiet_seconds: float = 1.5
    create_threads: int = 16  # concurrent creates of the bench's own load
    kube_qps: float | None = None  # a client-side QPS limit for the operator (and the floor)
    # Open the steady window only once the burst's runs are out of the bulk poll's look-back.
    settle_look_back: bool = True
    profile: bool = True  # sample the operator with py-spy during the burst
    # Samples per second. --quick's 20-Run burst costs the operator about 0.15 s of CPU: at the
    # usual rate, a handful of samples, at times none.
    profile_rate: int = RATE
    kopf: bool = True  # the kopf peer's burst and memory
    capacity: bool = True  # KFP's own capacity for N creates
    idle_run_configurations: bool = True  # N RunConfigurations on schedules, none due
    # The restart (its floor, the API server alone, the operator) is measured this many times,
    # in turn; the medians are reported.
    restart_rounds: int = DEFAULT_RESTART_ROUNDS

    @property
    def operator_settings(self) -> dict[str, Any]:
        settings = {**OPERATOR_SETTINGS, **(QUICK_OPERATOR_SETTINGS if self.quick else {})}
        if self.kube_qps is not None:
            settings["kube"] = {"qps": self.kube_qps}
        return settings

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["json_path"] = str(self.json_path) if self.json_path else None
        data["work_dir"] = str(self.work_dir) if self.work_dir else None
        data["operator_settings"] = self.operator_settings
        return data


def parse_args(argv: list[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measures the operator against a local stack; prints a table and writes JSON.",
    )
    parser.add_argument(
        "--runs", type=int, default=None, help=f"N, Runs per scenario (default {DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--cache-runs",
        type=int,
        default=None,
        help=f"M, completed Runs for the memory and restart scenarios (default {DEFAULT_CACHE_RUNS})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run for the smoke test (N=20, M=200, short windows)"
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON result")
    parser.add_argument("--work-dir", type=Path, default=None, help="where to keep logs and state")
    parser.add_argument("--steady-window", type=float, default=None, help="steady-state window, seconds")
    parser.add_argument(
        "--kube-qps",
        type=float,
        default=None,
        help="set the operator's kube.qps (a client-side limit; the floor gets the same)",
    )
    parser.add_argument(
        "--restart-rounds",
        type=int,
        default=None,
        help=(
            "how many times the restart is measured, medians reported "
            f"(default {DEFAULT_RESTART_ROUNDS}; {QUICK_RESTART_ROUNDS} with --quick)"
        ),
    )
    parser.add_argument("--no-profile", action="store_true", help="do not sample the burst with py-spy")
    parser.add_argument("--no-kopf", action="store_true", help="leave out the kopf peer")
    parser.add_argument("--no-capacity", action="store_true", help="leave out KFP's own capacity")
    parser.add_argument("--no-idle-rc", action="store_true", help="leave out the idle RunConfigurations")
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="open the steady window without waiting out the poll's look-back (no settling figure)",
    )
    args = parser.parse_args(argv)
    if args.restart_rounds is not None and args.restart_rounds < 1:
        parser.error("--restart-rounds must be at least 1")
    quick = args.quick
    return BenchOptions(
        runs=args.runs if args.runs is not None else (20 if quick else DEFAULT_RUNS),
        cache_runs=args.cache_runs if args.cache_runs is not None else (200 if quick else DEFAULT_CACHE_RUNS),
        quick=quick,
        json_path=args.json,
        work_dir=args.work_dir,
        steady_window_seconds=(
            args.steady_window if args.steady_window is not None else (3.0 if quick else 60.0)
        ),
        quiet_seconds=0.5 if quick else 1.5,
        kube_qps=args.kube_qps,
        settle_look_back=not (quick or args.no_settle),
        profile=not args.no_profile,
        profile_rate=QUICK_PROFILE_RATE if quick else RATE,
        kopf=not args.no_kopf,
        capacity=not args.no_capacity,
        idle_run_configurations=not args.no_idle_rc,
        restart_rounds=args.restart_rounds or (QUICK_RESTART_ROUNDS if quick else DEFAULT_RESTART_ROUNDS),
        timings=EmulatorTimings(0.1, 0.1) if quick else EmulatorTimings(0.5, 0.2),
    )


def operator_config(
    stack: BenchStack, namespace: str, options: BenchOptions, *, identity: str
) -> dict[str, Any]:
    """The operator's configuration file for one scenario (ports are added by the process)."""
    return {
        "kfp": {"endpoint": stack.kfp_url},
        "mlmd": {"host": "127.0.0.1", "port": stack.mlmd_port},
        "events": {
            "nats": {
                "url": stack.nats_url,
                "subject": f"{EVENTS_SUBJECT_PREFIX}.{namespace}",
                "jetstream": True,
            }
        },
        "watchNamespaces": [namespace],
        "leaderElection": {
            "enabled": True,
            "namespace": namespace,
            "name": "kfp-operator",
            "identity": identity,
        },
        **options.operator_settings,
    }
