"""Schedules: when a RunConfiguration's cron ticks fire, decided as a CronJob decides, purely.

A tick is "unmet" once it has passed and is later than ``status.lastScheduleTime`` (or the
RunConfiguration's creation, and the policy's ``startTime``). Of the unmet ticks only the
latest may run (at most one catch-up after downtime), and only within
``startingDeadlineSeconds`` when that is set; the earlier ones are counted as missed. The
concurrency policy then decides about the latest tick while a scheduled Run is still active.

Cron expressions are read by ``croniter``: five fields, six with seconds first (as KFP and
robfig/cron write them), or a macro (``@hourly``); in the policy's time zone (``zoneinfo``, the
IANA database), so ``0 2 * * *`` in Europe/London is 02:00 local time in summer and in winter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from reconcilers.api.runconfiguration import FORBID, REPLACE, SchedulePolicy

# How many unmet ticks are counted one by one (CronJob stops at 100 too).
MAX_COUNTED_TICKS = 100


class InvalidSchedule(ValueError):
    """A schedule that cannot fire: a bad cron expression or time zone."""


@dataclass(frozen=True)
class Fire:
    """Create a Run for ``tick``; ``missed`` earlier unmet ticks are not run; ``replace`` the active."""

    tick: datetime
    missed: int = 0
    replace: bool = False


@dataclass(frozen=True)
class Skip:
    """Record ``tick`` as handled without a Run, because of ``reason``."""

    tick: datetime
    reason: str
    message: str
    missed: int = 0


Decision = Fire | Skip

DEADLINE, CONCURRENCY, DOWNTIME = "deadline", "concurrency", "downtime"


def validate(expressions: Sequence[str], policy: SchedulePolicy) -> None:
    """Raises InvalidSchedule naming the first expression or setting that cannot be used."""
    zone(policy)
    for expression in expressions:
        if not croniter.is_valid(expression, second_at_beginning=_has_seconds(expression)):
            raise InvalidSchedule(f"schedule {expression!r} is not a valid cron expression")
        try:
            _ticks_after(expression, zone(policy), datetime(2000, 1, 1, tzinfo=UTC)).__next__()
        except StopIteration:
            raise InvalidSchedule(f"schedule {expression!r} never fires") from None
    if policy.start_time and policy.end_time and policy.end_time <= policy.start_time:
        raise InvalidSchedule("schedulePolicy.endTime must be after schedulePolicy.startTime")


def zone(policy: SchedulePolicy) -> ZoneInfo:
    try:
        return ZoneInfo(policy.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problem = f"schedulePolicy.timeZone {policy.time_zone!r} is not a known time zone"
        raise InvalidSchedule(problem) from None


def decide(
    expressions: Sequence[str],
    policy: SchedulePolicy,
    *,
    now: datetime,
    last_handled: datetime | None,
    created_at: datetime,
    active_scheduled_runs: int,
) -> Decision | None:
    """What to do about the schedules now; None when no tick is unmet."""
    if not expressions:
        return None
    since = max(t for t in (last_handled, created_at, _before(policy.start_time)) if t is not None)
    until = min(now, policy.end_time) if policy.end_time else now
    if until <= since:
        return None
    unmet = list(_merged_ticks(expressions, zone(policy), since, until, limit=MAX_COUNTED_TICKS + 1))
    if not unmet:
        return None
    latest = _latest_tick(expressions, zone(policy), until)
    missed = len(unmet) - 1
    deadline = policy.starting_deadline_seconds
    if deadline is not None and (now - latest).total_seconds() > deadline:
        return Skip(
            latest,
            DEADLINE,
            f"the tick at {latest.isoformat()} is more than startingDeadlineSeconds ({deadline}) late",
            missed=missed,
        )
    if active_scheduled_runs and policy.concurrency_policy == FORBID:
        return Skip(
            latest,
            CONCURRENCY,
            f"a scheduled Run is still active and concurrencyPolicy is Forbid: tick {latest.isoformat()} "
            "skipped",
            missed=missed,
        )
    replace = bool(active_scheduled_runs) and policy.concurrency_policy == REPLACE
    return Fire(latest, missed=missed, replace=replace)


def next_tick(expressions: Sequence[str], policy: SchedulePolicy, after: datetime) -> datetime | None:
    """The first tick after ``after`` (and within the policy's window), if any."""
    start = max(after, _before(policy.start_time) or after)
    ticks = [t for e in expressions for t in _first(_ticks_after(e, zone(policy), start))]
    if not ticks:
        return None
    first = min(ticks)
    return None if policy.end_time and first > policy.end_time else first


def _merged_ticks(
    expressions: Sequence[str], tz: ZoneInfo, since: datetime, until: datetime, *, limit: int
) -> Iterator[datetime]:
    """Ticks in (since, until] of all expressions, in order, at most ``limit``."""
    seen: set[datetime] = set()
    for expression in expressions:
        for tick in _ticks_after(expression, tz, since):
            if tick > until or len(seen) >= limit:
                break
            seen.add(tick)
    yield from sorted(seen)[:limit]


def _latest_tick(expressions: Sequence[str], tz: ZoneInfo, until: datetime) -> datetime:
    """The latest tick at or before ``until`` of any expression (one exists when called)."""
    latest = []
    for expression in expressions:
        # croniter's previous tick is strictly before its base: start a second after ``until``.
        base = until.replace(microsecond=0) + timedelta(seconds=1)
        iterator = croniter(expression, base.astimezone(tz), second_at_beginning=_has_seconds(expression))
        try:
            tick = iterator.get_prev(datetime).astimezone(UTC)
        except CroniterBadDateError:
            continue
        if tick > until:
            tick = iterator.get_prev(datetime).astimezone(UTC)
        latest.append(tick)
    return max(latest)


def _ticks_after(expression: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    iterator = croniter(expression, after.astimezone(tz), second_at_beginning=_has_seconds(expression))
    while True:
        try:
            yield iterator.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError:
            return


def _first(ticks: Iterator[datetime]) -> list[datetime]:
    return [tick for tick, _ in zip(ticks, range(1), strict=False)]


def _before(moment: datetime | None) -> datetime | None:
    # A tick exactly at startTime counts: start looking just before it.
    return moment - timedelta(microseconds=1) if moment is not None else None


def _has_seconds(expression: str) -> bool:
    return not expression.startswith("@") and len(expression.split()) == 6
