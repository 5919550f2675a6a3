"""Rate limiters for work-queue retries, and the token bucket behind them.

A port of client-go ``util/workqueue/default_rate_limiters.go`` (and of the token bucket of
``golang.org/x/time/rate`` that it wraps). A :class:`RateLimiter` answers "how long should
this item wait before it is retried?"; :meth:`RateLimitingQueue.add_rate_limited` is simply
``add_after(item, limiter.when(item))``.

Why this is written here rather than taken from a library: the queue's behaviour is defined by
these exact formulas (5 ms·2^failures capped at 1000 s, a 10/s bucket with a burst of 100,
combined by taking the maximum), and dashboards and tests are calibrated against upstream.
The Python rate-limiting libraries (``limits``, ``pyrate-limiter``) implement
"try to acquire, else refuse" windows, not Go's reservation model where taking a token always
succeeds and returns the delay to honour, which is what :class:`MaxOfRateLimiter` combines
with per-item delays. The code is small, has no I/O, and is tested against the upstream cases.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Protocol

from controller.clock import Clock, RealClock

# client-go DefaultTypedControllerRateLimiter.
DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_BUCKET_QPS = 10.0
DEFAULT_BUCKET_BURST = 100


class RateLimiter(Protocol):
    """client-go ``TypedRateLimiter``. Implementations must be thread-safe."""

    def when(self, item: Hashable) -> float:
        """Returns how many seconds ``item`` should wait, and records one more failure for it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stops tracking ``item``: its next failure starts from the base delay again.

        Only clears the failure history; the caller still has to ``done()`` the item.
        """
        ...

    def num_requeues(self, item: Hashable) -> int:
        """Returns how many failures have been recorded for ``item`` since it was last forgotten."""
        ...


class TokenBucket:
    """A token bucket with Go ``rate.Limiter`` reservation semantics.

    Tokens accrue at ``qps`` per second up to ``burst``; the bucket starts full.
    :meth:`reserve` always takes a token, possibly driving the balance negative, and returns
    the delay after which that token is really available. Callers either wait that long
    (:meth:`wait`, used for API requests) or schedule the work that far in the future
    (:class:`BucketRateLimiter`, used for queue retries). ``qps <= 0`` disables limiting, as
    a negative QPS does in client-go's ``rest.Config``.
    """

    def __init__(self, qps: float, burst: int, clock: Clock | None = None) -> None:
        if qps > 0 and burst < 1:
            raise ValueError("a token bucket needs a burst of at least 1")
        self._qps = qps
        self._burst = burst
        self._clock = clock or RealClock()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()

    @property
    def qps(self) -> float:
        return self._qps

    @property
    def burst(self) -> int:
        return self._burst

    def _advance(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._qps)
        self._last = now

    def reserve(self) -> float:
        """Takes one token and returns the seconds until it may be used (0 when available now)."""
        if self._qps <= 0:
            return 0.0
        with self._lock:
            self._advance()
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._qps

    def try_take(self) -> bool:
        """Takes one token only if one is available now (Go ``Limiter.Allow``)."""
        if self._qps <= 0:
            return True
        with self._lock:
            self._advance()
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def wait(self, stop: threading.Event | None = None) -> float:
        """Takes one token and blocks until it may be used; returns the seconds waited.

        Blocks in real time (``threading.Event.wait``) and returns early if ``stop`` is set.
        """
        delay = self.reserve()
        if delay > 0:
            (stop or threading.Event()).wait(delay)
        return delay


class _FailureCounts:
    """The consecutive failures of each item, which the per-item limiters turn into delays."""

    def __init__(self) -> None:
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def _record_failure(self, item: Hashable) -> int:
        """Counts one more failure of ``item``; returns how many it had before this one."""
        with self._lock:
            before = self._failures.get(item, 0)
            self._failures[item] = before + 1
        return before

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class ItemExponentialFailureRateLimiter(_FailureCounts):
    """``base_delay * 2**failures`` per item, capped at ``max_delay``.

    client-go ``ItemExponentialFailureRateLimiter``: with the defaults (5 ms, 1000 s) the cap
    is reached after 18 consecutive failures of one item.
    """

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        super().__init__()
        self._base = base_delay
        self._max = max_delay

    def when(self, item: Hashable) -> float:
        exp = self._record_failure(item)
        # Bound the exponent so the power cannot overflow a float; anything that large is
        # far beyond any sensible max_delay anyway (upstream guards against int64 overflow).
        if exp > 1000:
            return self._max
        return min(self._base * 2.0**exp, self._max)


class BucketRateLimiter:
    """An overall (not per-item) limit on retries: every ``when`` takes a token from the bucket."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    def when(self, item: Hashable) -> float:
        return self._bucket.reserve()

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """Asks every limiter and returns the longest delay; requeues are the maximum count.

    Every limiter's ``when`` is called, so each one records the failure (and the bucket
    spends a token) even when another limiter's delay wins, exactly as upstream.
    """

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> RateLimiter:
    """client-go ``DefaultTypedControllerRateLimiter``: per-item 5 ms..1000 s, overall 10/s burst 100.

    The bucket only ever sees rate-limited re-adds (failures), never first adds or
    ``add_after`` requeues, so it caps the retry rate of a controller that is failing for
    every key without slowing normal work.
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY),
        BucketRateLimiter(TokenBucket(DEFAULT_BUCKET_QPS, DEFAULT_BUCKET_BURST, clock)),
    )
