"""Releasing a deleted Pipeline or Experiment: what it made in KFP goes first, for at most
``deletionTimeout``.

While KFP cannot be reached the finalizer stays (the status says why, and the reconcile is retried
with backoff); once the timeout has passed since the deletion the resource is released anyway, with
a Warning Event saying what was left in KFP, so that a lost KFP never keeps a namespace from being
deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from controller.clock import Clock
from controller.reconcile import Result
from reconcilers.clients import EventRecorder, KfpError
from reconcilers.timestamps import parse_time

DELETION_TIMED_OUT = "DeletionTimedOut"


def release_after_kfp_cleanup(
    obj: Mapping[str, Any],
    *,
    clean_up: Callable[[], None],
    report: Callable[[str], None],
    release: Callable[[], object],
    left_behind: str,
    recorder: EventRecorder,
    clock: Clock,
    timeout: timedelta,
) -> Result:
    """Runs ``clean_up`` (KFP calls), then ``release`` (removes the finalizer).

    A ``KfpError`` before the timeout is ``report``-ed (a status message) and raised, for a retry;
    after it, the Event names what was ``left_behind`` and the resource is released.
    """
    deleted_at = parse_time(obj["metadata"].get("deletionTimestamp")) or clock.now()
    try:
        clean_up()
    except KfpError as error:
        if clock.now() < deleted_at + timeout:
            report(f"deleting from KFP: {error.message}")
            raise
        recorder.event(
            obj,
            "Warning",
            DELETION_TIMED_OUT,
            f"released after {timeout} without deleting {left_behind}, which could not be reached "
            f"({error.message})",
        )
    release()
    return Result()
