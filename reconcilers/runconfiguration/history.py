"""How many completed Runs a RunConfiguration keeps, as a pure function (CronJob's history limits).

The oldest completed Runs beyond ``successfulRunsHistoryLimit`` and ``failedRunsHistoryLimit``
go, newest kept first by KFP finish time, but only once nothing would be lost with them: their
completion event delivered and the RunConfiguration updated (``reconcilers.handover``). The TTL
deletes Runs independently of this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconcilers.api.run import RunView


def beyond_history(
    runs: Sequence[RunView],
    *,
    successful_limit: int,
    failed_limit: int,
    may_go: Callable[[RunView], bool],
) -> list[RunView]:
    """The completed Runs to delete, oldest first."""
    doomed: list[RunView] = []
    for state, limit in (("Succeeded", successful_limit), ("Failed", failed_limit)):
        completed = sorted(
            (r for r in runs if r.completion_state == state and not r.is_deleting),
            key=lambda r: (r.status.get("finishedAt") or r.status.get("markedCompletedAt") or "", r.name),
            reverse=True,
        )
        doomed.extend(r for r in reversed(completed[limit:]) if may_go(r))
    return doomed
