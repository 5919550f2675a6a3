"""When a completed Run is deleted: the TTL policy, as pure functions.

A Run is deleted ``runCompletionTTL`` after its KFP run finished (the per-Run
annotation ``pipelines.kubeflow.org/ttl-after-completion`` overrides the global
value), and never before its completion event is delivered and its
RunConfiguration updated: deleting earlier would lose what downstream consumers
and dependent Runs read. An annotation that is not a duration, or is negative, is
reported and ignored: the global value applies, and nothing is deleted early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.settings.values import InvalidValue, parse_go_duration
from reconcilers.api import TTL_ANNOTATION
from reconcilers.api.run import RunView
from reconcilers.handover import handover_pending
from reconcilers.timestamps import parse_time


@dataclass(frozen=True)
class Keep:
    """Not deleted (yet); ``recheck_after`` is when the answer can change by time alone.

    ``problem`` says why the Run's own annotation was ignored, for a Warning Event.
    """

    reason: str
    recheck_after: timedelta | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Delete:
    ttl: timedelta
    problem: str | None = None


TtlDecision = Keep | Delete


@dataclass(frozen=True)
class Ttl:
    """The TTL that applies to a Run, and why its annotation was ignored, if it was."""

    ttl: timedelta | None
    problem: str | None = None


def ttl_for(run: RunView, default: timedelta | None) -> Ttl:
    annotation = run.annotations.get(TTL_ANNOTATION)
    if annotation is None:
        return Ttl(default)
    try:
        seconds = parse_go_duration(annotation)
    except InvalidValue as error:
        return Ttl(default, f"invalid {TTL_ANNOTATION} annotation: {error}; {_fallback(default)}")
    if seconds < 0:
        return Ttl(
            default, f"invalid {TTL_ANNOTATION} annotation: {annotation!r} is negative; {_fallback(default)}"
        )
    return Ttl(timedelta(seconds=seconds))


def _fallback(default: timedelta | None) -> str:
    if default is None:
        return "the Run is kept (no runCompletionTTL is configured)"
    return f"the configured runCompletionTTL ({default.total_seconds():g}s) applies"


def decide(
    run: RunView,
    *,
    default_ttl: timedelta | None,
    now: datetime,
    sinks_configured: bool,
    run_configuration: Mapping[str, Any] | None,
) -> TtlDecision:
    if not run.is_completed or run.is_deleting:
        return Keep("not completed")
    setting = ttl_for(run, default_ttl)
    problem = setting.problem
    if setting.ttl is None:
        return Keep("no TTL", problem=problem)
    pending = handover_pending(run, sinks_configured=sinks_configured, run_configuration=run_configuration)
    if pending is not None:
        return Keep(pending, problem=problem)
    finished = parse_time(run.status.get("finishedAt")) or parse_time(run.status.get("markedCompletedAt"))
    if finished is None:
        return Keep("no finish time", problem=problem)
    remaining = finished + setting.ttl - now
    if remaining > timedelta(0):
        return Keep("TTL not expired", recheck_after=remaining, problem=problem)
    return Delete(setting.ttl, problem=problem)
