"""Rate limiters, ported from client-go's default_rate_limiters_test.go, and the token bucket."""

from __future__ import annotations

import pytest

from controller.clock import FakeClock
from controller.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    TokenBucket,
    default_controller_rate_limiter,
)

MS = 0.001


def test_item_exponential_failure() -> None:
    limiter = ItemExponentialFailureRateLimiter(1 * MS, 1.0)
    assert [limiter.when("one") for _ in range(5)] == pytest.approx([1 * MS, 2 * MS, 4 * MS, 8 * MS, 16 * MS])
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == pytest.approx([1 * MS, 2 * MS])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == pytest.approx(1 * MS)


def test_item_exponential_failure_caps_without_overflow() -> None:
    limiter = ItemExponentialFailureRateLimiter(1 * MS, 1000.0)
    for _ in range(5):
        limiter.when("one")
    assert limiter.when("one") == pytest.approx(32 * MS)
    for _ in range(1000):
        limiter.when("overflow1")
    assert limiter.when("overflow1") == 1000.0

    limiter = ItemExponentialFailureRateLimiter(60.0, 1000 * 3600.0)
    for _ in range(2):
        limiter.when("two")
    assert limiter.when("two") == 4 * 60.0
    for _ in range(1000):
        limiter.when("overflow2")
    assert limiter.when("overflow2") == 1000 * 3600.0


def test_max_of() -> None:
    # The first grows from 5 ms but stops at 20 ms; the second from 1 ms up to 1 s.
    limiter = MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(5 * MS, 20 * MS),
        ItemExponentialFailureRateLimiter(1 * MS, 1.0),
    )
    assert [limiter.when("one") for _ in range(7)] == pytest.approx(
        [5 * MS, 10 * MS, 20 * MS, 20 * MS, 20 * MS, 32 * MS, 64 * MS]
    )
    assert limiter.num_requeues("one") == 7
    assert [limiter.when("two") for _ in range(2)] == pytest.approx([5 * MS, 10 * MS])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == pytest.approx(5 * MS)


def test_token_bucket_reservations() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(10.0, 100, clock)
    assert all(bucket.reserve() == 0 for _ in range(100)), "the bucket starts full"
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2), "reservations queue up behind each other"
    clock.step(1.0)  # 10 tokens accrue; 2 were owed
    assert [bucket.reserve() for _ in range(8)] == [0.0] * 8
    assert bucket.reserve() == pytest.approx(0.1)


def test_token_bucket_refills_only_up_to_burst() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(1.0, 2, clock)
    bucket.reserve()
    bucket.reserve()
    clock.step(3600)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(1.0)


def test_token_bucket_try_take_does_not_borrow() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(0.5, 1, clock)
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.step(1.0)
    assert not bucket.try_take(), "half a token is not a token"
    clock.step(1.0)
    assert bucket.try_take()


def test_non_positive_qps_disables_the_bucket() -> None:
    bucket = TokenBucket(0, 0, FakeClock())
    assert all(bucket.reserve() == 0 for _ in range(1000))


def test_bucket_limiter_only_counts_tokens() -> None:
    clock = FakeClock(start=0.0)
    limiter = BucketRateLimiter(TokenBucket(1.0, 1, clock))
    assert limiter.when("a") == 0
    assert limiter.when("b") == pytest.approx(1.0), "the bucket is shared by all items"
    assert limiter.num_requeues("a") == 0


def test_default_controller_limiter_combines_item_backoff_and_overall_bucket() -> None:
    clock = FakeClock(start=0.0)
    limiter = default_controller_rate_limiter(clock)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.010)
    for i in range(98):
        limiter.when(f"k{i}")  # the burst of 100 is now spent
    # The bucket now dominates a fresh item's 5 ms: 10 per second overall.
    assert limiter.when("fresh") == pytest.approx(0.1)
    assert limiter.num_requeues("a") == 2
