"""A typed, read-only view of a RunConfiguration as the API server returns it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from reconcilers.api.crds import DEFAULT_FAILED_HISTORY, DEFAULT_SUCCESSFUL_HISTORY
from reconcilers.api.run import RunSpec
from reconcilers.api.view import ObjectView
from reconcilers.timestamps import parse_time

ON_CHANGE_PIPELINE = "pipeline"
ON_CHANGE_RUN_SPEC = "runSpec"
ALLOW, FORBID, REPLACE = "Allow", "Forbid", "Replace"


@dataclass(frozen=True)
class SchedulePolicy:
    """``spec.schedulePolicy``: how the schedules fire (CronJob's fields)."""

    time_zone: str
    start_time: datetime | None
    end_time: datetime | None
    starting_deadline_seconds: int | None
    concurrency_policy: str

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SchedulePolicy:
        deadline = raw.get("startingDeadlineSeconds")
        return cls(
            time_zone=raw.get("timeZone") or "UTC",
            start_time=parse_time(raw.get("startTime")),
            end_time=parse_time(raw.get("endTime")),
            starting_deadline_seconds=int(deadline) if deadline is not None else None,
            concurrency_policy=raw.get("concurrencyPolicy") or ALLOW,
        )


class RunConfigurationView(ObjectView):
    """A RunConfiguration object as read from the cache. Never mutates the underlying dict."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        super().__init__(obj)
        self.spec_dict: Mapping[str, Any] = obj.get("spec") or {}

    @property
    def created_at(self) -> datetime | None:
        return parse_time(self.metadata.get("creationTimestamp"))

    @cached_property
    def run(self) -> RunSpec:
        return RunSpec.from_dict(self.spec_dict.get("run") or {})

    @property
    def _triggers(self) -> Mapping[str, Any]:
        return self.spec_dict.get("triggers") or {}

    @property
    def schedules(self) -> tuple[str, ...]:
        return tuple(self._triggers.get("schedules") or ())

    @property
    def on_change(self) -> frozenset[str]:
        return frozenset(self._triggers.get("onChange") or ())

    @property
    def trigger_references(self) -> tuple[str, ...]:
        """``triggers.runConfigurations``, as written (``name`` or ``namespace/name``)."""
        return tuple(dict.fromkeys(self._triggers.get("runConfigurations") or ()))

    @cached_property
    def schedule_policy(self) -> SchedulePolicy:
        return SchedulePolicy.from_dict(self.spec_dict.get("schedulePolicy") or {})

    @property
    def successful_history_limit(self) -> int:
        limit = self.spec_dict.get("successfulRunsHistoryLimit")
        return DEFAULT_SUCCESSFUL_HISTORY if limit is None else int(limit)

    @property
    def failed_history_limit(self) -> int:
        limit = self.spec_dict.get("failedRunsHistoryLimit")
        return DEFAULT_FAILED_HISTORY if limit is None else int(limit)

    def referenced(self) -> frozenset[str]:
        """Every RunConfiguration it depends on: parameter sources and triggers, as written."""
        return self.run.referenced_run_configurations() | frozenset(self.trigger_references)

    def latest_succeeded(self) -> Mapping[str, Any]:
        return ((self.status.get("latestRuns") or {}).get("succeeded")) or {}


def latest_succeeded_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``status.latestRuns.succeeded`` of a RunConfiguration object, ``{}`` when none."""
    if obj is None:
        return {}
    return RunConfigurationView(obj).latest_succeeded()
