"""What a completed Run owes downstream before it may disappear: a pure function.

A completed Run's run-completion event must reach every sink, and the RunConfiguration that owns
it must have taken its artifacts as its latest succeeded run, before the Run goes, whether it is
deleted after its TTL or by a user: deleting earlier would lose what consumers and dependent
Runs read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconcilers.api.run import RunView
from reconcilers.timestamps import parse_time

EVENT_NOT_DELIVERED = "completion event not delivered yet"
RUN_CONFIGURATION_NOT_UPDATED = "RunConfiguration not updated yet"


def handover_pending(
    run: RunView, *, sinks_configured: bool, run_configuration: Mapping[str, Any] | None
) -> str | None:
    """What the completed Run still owes, or None when it may go."""
    if sinks_configured and not (run.status.get("completionEvent") or {}).get("deliveredAt"):
        return EVENT_NOT_DELIVERED
    if not run_configuration_is_current(run, run_configuration):
        return RUN_CONFIGURATION_NOT_UPDATED
    return None


def run_configuration_is_current(run: RunView, run_configuration: Mapping[str, Any] | None) -> bool:
    """Whether the owning RunConfiguration (if any) reflects this run or a newer one.

    Only a succeeded run updates its RunConfiguration. A RunConfiguration that no
    longer exists has nothing to update.
    """
    owner = run.owning_run_configuration()
    if owner is None or run.completion_state != "Succeeded" or run_configuration is None:
        return True
    latest = ((run_configuration.get("status") or {}).get("latestRuns") or {}).get("succeeded") or {}
    if latest.get("providerId") == run.provider_id:
        return True
    latest_finished = parse_time(latest.get("finishedAt"))
    finished = parse_time(run.status.get("finishedAt"))
    return latest_finished is not None and finished is not None and latest_finished >= finished
