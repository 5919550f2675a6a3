"""Run metrics: what happens to Runs, for the people on call.

The counts of waiting and tracked Runs are computed from the informer cache at
scrape time rather than kept as gauges updated by reconcilers, so they cannot
drift from what the cluster holds (for example when a waiting Run is deleted).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reconcilers.api.run import RunView
from reconcilers.conditions import DEPENDENCIES_RESOLVED
from reconcilers.run.resolve import UNRESOLVED_REASONS
from reconcilers.runconfiguration.schedule import CONCURRENCY, DEADLINE, DOWNTIME
from reconcilers.runconfiguration.triggers import TRIGGERS

# Minutes to a day: pipelines run from seconds to many hours.
RUN_DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
# How long after KFP finished a run the operator recorded it: seconds, bounded by the poll interval.
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)

SUBMISSION_RESULTS = ("created", "adopted", "rejected", "failed")
COMPLETION_STATES = ("succeeded", "failed")


class RunMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.submissions = Counter(
            "kfp_operator_run_submissions_total",
            "Runs submitted to KFP: created, adopted (found by marker after a lost response or restart), "
            "rejected (invalid before submission) or failed (refused by KFP).",
            ["result"],
            registry=registry,
        )
        self.completions = Counter(
            "kfp_operator_run_completions_total",
            "Runs whose KFP run finished, by outcome.",
            ["state"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "kfp_operator_run_duration_seconds",
            "Duration of finished KFP runs, from creation to finish.",
            ["state"],
            buckets=RUN_DURATION_BUCKETS,
            registry=registry,
        )
        self.completion_lag = Histogram(
            "kfp_operator_run_completion_lag_seconds",
            "Time from a KFP run finishing to the operator recording its completion.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.event_deliveries = Counter(
            "kfp_operator_event_deliveries_total",
            "Run-completion event deliveries by sink and result (delivered or failed).",
            ["sink", "result"],
            registry=registry,
        )
        self.ttl_deletions = Counter(
            "kfp_operator_ttl_deletions_total",
            "Completed Runs deleted after their TTL.",
            registry=registry,
        )
        self.kfp_terminations = Counter(
            "kfp_operator_kfp_terminations_total",
            "Active KFP runs terminated because their Run was deleted.",
            registry=registry,
        )
        for result in SUBMISSION_RESULTS:
            self.submissions.labels(result)
        for state in COMPLETION_STATES:
            self.completions.labels(state)


class RunConfigurationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs_created = Counter(
            "kfp_operator_runconfiguration_runs_created_total",
            "Runs created by RunConfigurations, by the trigger that caused them.",
            ["trigger"],
            registry=registry,
        )
        self.schedule_ticks_missed = Counter(
            "kfp_operator_schedule_ticks_missed_total",
            "Schedule ticks that created no Run: missed while no operator ran (downtime), later than "
            "startingDeadlineSeconds (deadline), or skipped by concurrencyPolicy Forbid (concurrency).",
            ["reason"],
            registry=registry,
        )
        for trigger in TRIGGERS:
            self.runs_created.labels(trigger)
        for reason in (DOWNTIME, DEADLINE, CONCURRENCY):
            self.schedule_ticks_missed.labels(reason)


class RunCacheCollector(Collector):
    """``kfp_operator_runs_waiting{reason}`` and ``kfp_operator_runs{phase}`` from the Run cache.

    Nothing is reported until every Run is cached (``complete``): after a restart the completed
    Runs are listed after the others, and counts of part of them would show as a dip.
    """

    def __init__(
        self,
        list_runs: Callable[[], Iterable[Mapping[str, Any]]],
        complete: Callable[[], bool] = lambda: True,
    ) -> None:
        self._list_runs = list_runs
        self._complete = complete

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if not self._complete():
            return []
        waiting: Tally[str] = Tally()
        phases: Tally[str] = Tally()
        for obj in self._list_runs():
            run = RunView(obj)
            phases[_phase(run)] += 1
            condition = run.condition(DEPENDENCIES_RESOLVED)
            if not run.provider_id and condition is not None and condition.get("status") == "False":
                waiting[condition.get("reason", "Unknown")] += 1
        waiting_family = GaugeMetricFamily(
            "kfp_operator_runs_waiting",
            "Runs not submitted because a dependency is missing or invalid, by reason.",
            labels=["reason"],
        )
        for reason in sorted(set(UNRESOLVED_REASONS) | waiting.keys()):
            waiting_family.add_metric([reason], waiting.get(reason, 0))
        phase_family = GaugeMetricFamily(
            "kfp_operator_runs", "Runs in the operator's cache by phase.", labels=["phase"]
        )
        for phase in ("pending", "submitted", "succeeded", "failed"):
            phase_family.add_metric([phase], phases.get(phase, 0))
        return [waiting_family, phase_family]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


def _phase(run: RunView) -> str:
    if run.completion_state == "Succeeded":
        return "succeeded"
    if run.completion_state == "Failed" or run.status.get("synchronizationState") == "Failed":
        return "failed"
    return "submitted" if run.provider_id else "pending"
