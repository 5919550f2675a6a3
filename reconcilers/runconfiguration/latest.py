"""A RunConfiguration's latest succeeded run, chosen from the Runs that belong to it.

Level-triggered: the choice is recomputed from all of the RunConfiguration's
completed Runs, and an older run's late completion never replaces a newer one
(runs are ordered by the time they finished in KFP, then by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from reconcilers.api.run import RunView
from reconcilers.timestamps import parse_time


def latest_succeeded(runs: Iterable[RunView]) -> RunView | None:
    succeeded = [
        r for r in runs if r.completion_state == "Succeeded" and parse_time(r.status.get("finishedAt"))
    ]
    if not succeeded:
        return None
    return max(succeeded, key=lambda r: (parse_time(r.status["finishedAt"]), r.name))


def desired_latest(current: Mapping[str, Any] | None, candidate: RunView | None) -> dict[str, Any] | None:
    """The new ``status.latestRuns.succeeded``, or None when the current one should stay."""
    if candidate is None:
        return None
    desired = {
        "providerId": candidate.provider_id,
        "artifacts": [a.to_json() for a in candidate.artifacts()],
        "runName": candidate.namespaced_name,
        "finishedAt": candidate.status["finishedAt"],
    }
    current = current or {}
    if all(current.get(k) == v for k, v in desired.items()):
        return None
    current_finished, desired_finished = _finished(current), _finished(desired)
    if current_finished is not None and desired_finished is not None and current_finished > desired_finished:
        return None
    return desired


def _finished(reference: Mapping[str, Any]) -> datetime | None:
    return parse_time(reference.get("finishedAt"))
