"""Schedule decisions, as a CronJob makes them: one run per tick, at most one catch-up, deadlines,
concurrency, time zones and the policy's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconcilers.api.runconfiguration import SchedulePolicy
from reconcilers.runconfiguration.schedule import (
    CONCURRENCY,
    DEADLINE,
    Fire,
    InvalidSchedule,
    Skip,
    decide,
    next_tick,
    validate,
)

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def policy(**fields: object) -> SchedulePolicy:
    return SchedulePolicy.from_dict(fields)


def at(minutes: float, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


@pytest.mark.parametrize(
    ("name", "expressions", "pol", "now", "last", "active", "expected"),
    [
        ("nothing due before the first tick", ["*/5 * * * *"], policy(), at(4), None, 0, None),
        ("the tick that just passed fires", ["*/5 * * * *"], policy(), at(5, 3), None, 0, Fire(at(5))),
        ("a handled tick does not fire again", ["*/5 * * * *"], policy(), at(7), at(5), 0, None),
        (
            "after downtime only the latest unmet tick runs, the others are missed",
            ["*/5 * * * *"],
            policy(),
            at(23),
            at(5),
            0,
            Fire(at(20), missed=2),
        ),
        (
            "a tick later than its starting deadline is skipped",
            ["*/5 * * * *"],
            policy(startingDeadlineSeconds=60),
            at(23),
            at(5),
            0,
            Skip(at(20), DEADLINE, "", missed=2),
        ),
        (
            "within its starting deadline it still runs",
            ["*/5 * * * *"],
            policy(startingDeadlineSeconds=200),
            at(23),
            at(5),
            0,
            Fire(at(20), missed=2),
        ),
        (
            "Forbid skips a tick while a scheduled run is active",
            ["*/5 * * * *"],
            policy(concurrencyPolicy="Forbid"),
            at(10, 1),
            at(5),
            1,
            Skip(at(10), CONCURRENCY, ""),
        ),
        (
            "Allow runs it anyway",
            ["*/5 * * * *"],
            policy(),
            at(10, 1),
            at(5),
            1,
            Fire(at(10)),
        ),
        (
            "Replace runs it in place of the active one",
            ["*/5 * * * *"],
            policy(concurrencyPolicy="Replace"),
            at(10, 1),
            at(5),
            1,
            Fire(at(10), replace=True),
        ),
        (
            "six fields have seconds first",
            ["*/20 * * * * *"],
            policy(),
            at(0, 45),
            at(0, 20),
            0,
            Fire(at(0, 40)),
        ),
        (
            "no tick before startTime",
            ["*/5 * * * *"],
            policy(startTime="2026-01-01T10:30:00Z"),
            at(23),
            None,
            0,
            None,
        ),
        (
            "a tick exactly at startTime counts",
            ["*/5 * * * *"],
            policy(startTime="2026-01-01T10:30:00Z"),
            at(30, 1),
            None,
            0,
            Fire(at(30)),
        ),
        (
            "no tick after endTime",
            ["*/5 * * * *"],
            policy(endTime="2026-01-01T10:12:00Z"),
            at(23),
            at(10),
            0,
            None,
        ),
        (
            "several expressions: the latest of all their ticks",
            ["*/5 * * * *", "7 * * * *"],
            policy(),
            at(8),
            at(5),
            0,
            Fire(at(7)),
        ),
    ],
)
def test_decide(name, expressions, pol, now, last, active, expected) -> None:
    decision = decide(
        expressions, pol, now=now, last_handled=last, created_at=T0, active_scheduled_runs=active
    )

    if isinstance(expected, Skip):
        assert isinstance(decision, Skip)
        assert (decision.tick, decision.reason, decision.missed) == (
            expected.tick,
            expected.reason,
            expected.missed,
        )
    else:
        assert decision == expected


def test_a_run_configuration_created_after_a_tick_does_not_run_it() -> None:
    assert (
        decide(
            ["*/5 * * * *"], policy(), now=at(7), last_handled=None, created_at=at(6), active_scheduled_runs=0
        )
        is None
    )


def test_ticks_are_read_in_the_time_zone_across_daylight_saving() -> None:
    london = policy(timeZone="Europe/London")
    winter = next_tick(["0 2 * * *"], london, datetime(2026, 1, 10, tzinfo=UTC))
    summer = next_tick(["0 2 * * *"], london, datetime(2026, 7, 10, tzinfo=UTC))

    assert winter == datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 10, 1, 0, tzinfo=UTC)  # 02:00 BST


def test_the_next_tick_respects_the_window() -> None:
    assert next_tick(["*/5 * * * *"], policy(), at(6)) == at(10)
    assert next_tick(["*/5 * * * *"], policy(startTime="2026-01-01T11:00:00Z"), at(6)) == at(60)
    assert next_tick(["*/5 * * * *"], policy(endTime="2026-01-01T10:08:00Z"), at(6)) is None


@pytest.mark.parametrize(
    ("expressions", "pol", "problem"),
    [
        (["61 * * * *"], policy(), "not a valid cron expression"),
        (["* * * *"], policy(), "not a valid cron expression"),
        (["0 0 31 2 *"], policy(), "never fires"),
        (["@hourly"], policy(timeZone="Mars/Olympus"), "not a known time zone"),
        (["@hourly"], policy(startTime="2026-02-01T00:00:00Z", endTime="2026-01-01T00:00:00Z"), "endTime"),
    ],
)
def test_schedules_that_cannot_fire_are_reported(expressions, pol, problem) -> None:
    with pytest.raises(InvalidSchedule, match=problem):
        validate(expressions, pol)


@pytest.mark.parametrize(
    "expression", ["*/5 * * * *", "0 0 * * * *", "@hourly", "@midnight", "0 9 * * MON-FRI"]
)
def test_valid_schedules(expression: str) -> None:
    validate([expression], policy())
