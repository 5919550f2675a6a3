"""Time as an injected dependency.

Every component that measures or schedules time takes a :class:`Clock`, as client-go's
``k8s.io/utils/clock`` does, so tests drive time explicitly with :class:`FakeClock` instead of
sleeping. Two readings are offered because they answer different questions:

* :meth:`Clock.monotonic` measures intervals (delays, backoff, lease validity). It never jumps.
* :meth:`Clock.now` is wall-clock time in UTC, for timestamps written to the API (Lease
  ``renewTime``, Event ``lastTimestamp``) and for comparisons with timestamps read from it.

Blocking waits are deliberately not part of the protocol: components wait on
``threading.Condition``/``Event`` with a timeout computed from the clock, and structures that
need deterministic tests expose a ``pump()``-style step that the test calls instead.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of time. Implementations must be safe to call from any thread."""

    def now(self) -> datetime:
        """Returns the current wall-clock time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Returns seconds on a clock that never goes backwards (only differences matter)."""
        ...


class RealClock:
    """The process clocks: ``datetime.now(UTC)`` and ``time.monotonic()``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to.

    Both readings advance together by :meth:`step`, so code that mixes them stays
    consistent. The default start values are arbitrary but fixed, which keeps test output
    reproducible.
    """

    def __init__(
        self,
        start: float = 1000.0,
        wall: datetime = datetime(2030, 1, 1, tzinfo=UTC),
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = start
        self._wall = wall

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def step(self, seconds: float) -> None:
        """Advances both readings by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot step backwards")
        with self._lock:
            self._monotonic += seconds
            self._wall += timedelta(seconds=seconds)
