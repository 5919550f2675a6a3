"""Status conditions in the standard ``metav1.Condition`` shape, and the status they go into.

A condition's ``lastTransitionTime`` changes only when its status changes, as
``meta.SetStatusCondition`` does, so re-computing an unchanged condition yields
an identical dict and no status write.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcilers.api.view import ObjectView
from reconcilers.timestamps import format_time

SYNCHRONIZED = "Synchronized"
DEPENDENCIES_RESOLVED = "DependenciesResolved"
COMPLETED = "Completed"
# The summary that kstatus-based tools (Argo CD, Flux, ``kubectl wait --for=condition=Ready``)
# read: True once the object is where its spec wants it, else False with the reason why not.
READY = "Ready"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# metav1.Condition's limit on a message: the API server refuses a status with a longer one, and
# messages quote what others said (KFP's errors), whose length is not ours to decide.
MAX_MESSAGE_LENGTH = 32768
_ELLIPSIS = " [...]"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def condition_of(conditions: Iterable[Mapping[str, Any]], condition_type: str) -> Condition | None:
    for found in conditions:
        if found.get("type") == condition_type:
            return Condition(
                condition_type,
                found.get("status", UNKNOWN),
                found.get("reason", ""),
                found.get("message", ""),
            )
    return None


def apply_conditions(
    current: Iterable[Mapping[str, Any]] | None,
    desired: Iterable[Condition],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Returns the condition list with ``desired`` set, others kept, in a stable order."""
    by_type = {c["type"]: dict(c) for c in current or ()}
    for condition in desired:
        previous = by_type.get(condition.type)
        transition = (
            previous["lastTransitionTime"]
            if previous is not None and previous.get("status") == condition.status
            else format_time(now)
        )
        by_type[condition.type] = {
            "type": condition.type,
            "status": condition.status,
            "observedGeneration": generation,
            "lastTransitionTime": transition,
            "reason": condition.reason,
            "message": bounded(condition.message),
        }
    return [by_type[t] for t in sorted(by_type, key=_order)]


Summary = Callable[[Sequence[Mapping[str, Any]]], Condition]
"""Derives a summary condition (``Ready``) from the others."""


def next_status(
    view: ObjectView,
    now: datetime,
    conditions: Sequence[Condition],
    /,
    *,
    summary: Summary | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The status ``view`` should have: its status with ``fields`` set (``None`` removes one),
    ``observedGeneration`` its generation, ``conditions`` applied, and then the condition
    ``summary`` derives from them. The cached status is copied, never changed."""
    status = copy.deepcopy(dict(view.status))
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    status["observedGeneration"] = view.generation
    updated = apply_conditions(view.status.get("conditions"), conditions, generation=view.generation, now=now)
    if summary is not None:
        updated = apply_conditions(updated, [summary(updated)], generation=view.generation, now=now)
    status["conditions"] = updated
    return status


def bounded(message: str) -> str:
    """``message``, cut to fit a condition (counted in bytes, as the API server counts)."""
    if len(message.encode()) <= MAX_MESSAGE_LENGTH:
        return message
    cut = message.encode()[: MAX_MESSAGE_LENGTH - len(_ELLIPSIS)].decode(errors="ignore")
    return cut + _ELLIPSIS


_ORDER = {SYNCHRONIZED: 0, DEPENDENCIES_RESOLVED: 1, COMPLETED: 2, READY: 3}


def _order(condition_type: str) -> tuple[int, str]:
    return (_ORDER.get(condition_type, len(_ORDER)), condition_type)
