"""When a converged Pipeline or Experiment next checks that what it made is still in KFP.

KFP has no watch: nothing tells the operator that someone deleted a pipeline, a version or an
experiment by hand (in the KFP UI, say), and a converged resource asks KFP nothing. So each
converged resource looks once per interval (``safetyCheckInterval``), one or two GETs, and makes
again what is gone. The first sight of a resource (at start, or once it converged) is not a check:
a restart costs no KFP call, and what went missing is noticed within two intervals.
"""

from __future__ import annotations

import threading

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.reconcile import Result


class PresenceChecks:
    def __init__(self, clock: Clock, interval: float) -> None:
        self._clock = clock
        self.interval = interval
        self._lock = threading.Lock()
        self._due: dict[ObjectKey, float] = {}  # key -> monotonic time of its next check

    def wait(self, key: ObjectKey) -> float:
        """Seconds until ``key``'s next check, 0 when due; the first sight starts the interval."""
        now = self._clock.monotonic()
        with self._lock:
            due = self._due.setdefault(key, now + self.interval)
        return max(0.0, due - now)

    def checked(self, key: ObjectKey) -> None:
        """``key``'s KFP objects were found: the next check is an interval away."""
        with self._lock:
            self._due[key] = self._clock.monotonic() + self.interval

    def forget(self, key: ObjectKey) -> None:
        """The resource is gone, or no longer converged: its next convergence starts afresh."""
        with self._lock:
            self._due.pop(key, None)

    def within(self, result: Result) -> Result:
        """``result``, coming back at the latest after an interval: a reconcile that made or mended
        something in KFP may leave the status as it was, and then no watch event brings the
        resource back for its next check."""
        if result.requeue_after is not None and result.requeue_after <= self.interval:
            return result
        return Result(requeue_after=self.interval, requeue=result.requeue)
