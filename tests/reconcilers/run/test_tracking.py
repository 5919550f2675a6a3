"""The bulk poll: what it asks KFP for, and which Runs it enqueues."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.keys import ObjectKey
from controller.store import Store
from reconcilers.clients import RunsPage
from reconcilers.run.tracking import (
    FINISHED_BATCH,
    MARKER_PREFIX,
    MIN_FIRST_PAGE,
    TRACKED_INDEX,
    KfpRunTracker,
    tracked_run_index,
)
from reconcilers.timestamps import format_time, parse_time

LOOKBACK = timedelta(minutes=5)


class ListOnlyKfp:
    """Answers run listings from a list of KFP runs as KFP does: the finished-since predicate,
    the sort order asked for, pages of ``PAGE_SIZE`` after a cursor (the last row read), each
    with the count of every run matching at that moment."""

    multi_user = False
    PAGE_SIZE = 2

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.asked_since: list[datetime] = []
        self.pages_read: list[int] = []  # per listing, how many pages the tracker asked for
        self.first_page_sizes: list[int | None] = []  # per listing, the first page's size asked for
        # Runs that finish while a listing is read: one as each page is handed over.
        self.finishing_while_listed: list[tuple[str, datetime]] = []

    def finish(self, run_id: str, at: datetime, state: str = "SUCCEEDED") -> None:
        self.runs.append(
            {
                "run_id": run_id,
                "state": state,
                "created_at": format_time(at - timedelta(minutes=1)),
                "finished_at": format_time(at),
                "description": f"{MARKER_PREFIX}{run_id}",
            }
        )

    def list_run_pages(
        self, *, filter: Mapping[str, Any], sort_by: str, namespace: str, first_page_size: int | None
    ) -> Iterator[RunsPage]:
        (finished,) = [p for p in filter["predicates"] if p["key"] == "finished_at"]
        since = parse_time(finished["timestamp_value"])
        assert since is not None
        self.asked_since.append(since)
        self.pages_read.append(0)
        self.first_page_sizes.append(first_page_size)
        size = min(first_page_size or self.PAGE_SIZE, self.PAGE_SIZE)
        field, _, order = sort_by.partition(" ")
        descending = order == "desc"

        def key(run: Mapping[str, Any]) -> tuple[str, str]:
            return (run[field], run["run_id"])

        cursor: tuple[str, str] | None = None
        while True:
            matching = sorted(
                (run for run in self.runs if parse_time(run["finished_at"]) >= since),  # type: ignore[operator]
                key=key,
                reverse=descending,
            )
            total = len(matching)
            if cursor is not None:
                matching = [
                    run for run in matching if (key(run) < cursor if descending else key(run) > cursor)
                ]
            page = matching[:size]
            self.pages_read[-1] += 1
            if self.finishing_while_listed:
                self.finish(*self.finishing_while_listed.pop(0))
            yield RunsPage(page, total)
            if len(matching) <= size:
                return
            cursor = key(page[-1])
            size = self.PAGE_SIZE

    @property
    def last_since(self) -> datetime:
        return self.asked_since[-1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kfp() -> ListOnlyKfp:
    return ListOnlyKfp()


@pytest.fixture
def runs() -> Store:
    return Store({TRACKED_INDEX: tracked_run_index})


@pytest.fixture
def enqueued() -> list[ObjectKey]:
    return []


@pytest.fixture
def tracker(kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock) -> KfpRunTracker:
    return KfpRunTracker(
        kfp,  # type: ignore[arg-type]
        runs,
        enqueued.append,
        runs_synced=lambda: True,
        clock=clock,
        poll_interval=10,
        safety_check_interval=600,
        lookback=LOOKBACK,
    )


def track(runs: Store, name: str, run_id: str, started_at: datetime) -> None:
    runs.upsert(
        {
            "metadata": {"namespace": "ml", "name": name},
            "status": {"providerId": f"kfp:{run_id}", "startedAt": format_time(started_at)},
        }
    )


def test_nothing_is_asked_while_no_run_is_tracked(tracker: KfpRunTracker, kfp: ListOnlyKfp) -> None:
    tracker.poll()
    assert kfp.asked_since == []
    assert tracker.has_synced()


def test_the_first_poll_looks_back_to_the_oldest_tracked_start(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    oldest = clock.now() - timedelta(hours=3)
    track(runs, "old", "r-old", oldest)
    track(runs, "new", "r-new", clock.now() - timedelta(minutes=1))

    tracker.poll()

    assert kfp.last_since == oldest - LOOKBACK


def test_only_tracked_runs_that_finished_are_enqueued_once(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock
) -> None:
    track(runs, "done", "r-done", clock.now() - timedelta(minutes=10))
    track(runs, "busy", "r-busy", clock.now() - timedelta(minutes=10))
    kfp.finish("r-done", clock.now() - timedelta(minutes=2))
    kfp.finish("r-someone-elses", clock.now() - timedelta(minutes=2))

    tracker.poll()
    clock.step(10)
    tracker.poll()

    assert enqueued == [ObjectKey("ml", "done")]
    observation = tracker.observation("r-done")
    assert observation is not None and observation.state == "SUCCEEDED"
    assert tracker.observation("r-busy") is None


def test_with_kfp_clock_ahead_later_polls_look_back_from_the_newest_finish_seen(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    track(runs, "busy", "r-busy", clock.now() - timedelta(hours=1))
    newest = clock.now() + timedelta(minutes=2)  # KFP's clock runs ahead of the operator's
    kfp.finish("r-other", newest)

    tracker.poll()
    clock.step(10)
    tracker.poll()

    assert kfp.last_since == newest - LOOKBACK


def test_an_idle_poll_stops_listing_runs_one_look_back_after_they_finished(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    """Without a newer finish the watermark stands still; the previous poll's start still moves."""
    track(runs, "busy", "r-busy", clock.now() - timedelta(hours=1))
    for i in range(3):
        kfp.finish(f"r-burst-{i}", clock.now() - timedelta(seconds=30))
    tracker.poll()

    clock.step(LOOKBACK.total_seconds() + 60)
    previous_poll = clock.now()
    tracker.poll()
    clock.step(10)
    tracker.poll()

    assert kfp.last_since == previous_poll - LOOKBACK
    assert [run for run in kfp.runs if parse_time(run["finished_at"]) >= kfp.last_since] == []  # type: ignore[operator]


def test_a_report_delayed_within_the_look_back_is_still_found(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock
) -> None:
    track(runs, "late", "r-late", clock.now() - timedelta(hours=1))
    tracker.poll()
    clock.step(60)
    tracker.poll()

    # It finished before the last poll, but KFP only shows it now.
    kfp.finish("r-late", clock.now() - timedelta(minutes=2))
    clock.step(10)
    tracker.poll()

    assert enqueued == [ObjectKey("ml", "late")]


def test_runs_recorded_by_earlier_polls_are_not_listed_again(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    """A burst's finished runs stay in the look-back for minutes; each later poll reads one page."""
    track(runs, "busy", "r-busy", clock.now() - timedelta(hours=1))
    for i in range(7):
        kfp.finish(f"r-burst-{i}", clock.now() - timedelta(seconds=30 + i))
    tracker.poll()
    clock.step(10)
    tracker.poll()
    clock.step(10)
    kfp.finish("r-next", clock.now() - timedelta(seconds=1))
    tracker.poll()

    assert kfp.pages_read == [4, 1, 1], "the first poll reads the 7 runs' 4 pages; then one page each"
    assert all(parse_time(r["finished_at"]) >= kfp.last_since for r in kfp.runs)  # type: ignore[operator]


def test_runs_finishing_while_a_poll_reads_its_pages_do_not_make_it_read_every_page(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock
) -> None:
    """In a burst runs finish all the time. Those finishing after the poll's first page sort
    above the pages still to come: the poll stops once it has what matched when it began, and
    the next poll lists them."""
    track(runs, "busy", "r-busy", clock.now() - timedelta(hours=1))
    for i in range(7):
        kfp.finish(f"r-burst-{i}", clock.now() - timedelta(seconds=60 + i))
    tracker.poll()
    clock.step(10)
    for i in range(3):
        kfp.finish(f"r-since-{i}", clock.now() - timedelta(seconds=5 + i))
    track(runs, "during", "r-during", clock.now() - timedelta(minutes=1))
    kfp.finishing_while_listed = [("r-during", clock.now()), ("r-after", clock.now())]
    tracker.poll()
    assert kfp.pages_read == [4, 2], "the 3 runs finished since the last poll are on 2 pages"
    assert enqueued == []

    clock.step(10)
    tracker.poll()

    assert kfp.pages_read == [4, 2, 1]
    assert enqueued == [ObjectKey("ml", "during")]


def test_the_first_page_asked_for_has_room_for_twice_the_runs_the_last_poll_found(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    """Once what is in the look-back is recorded, a poll mostly re-reads it: the first page is
    sized from the last poll's new runs, not the server's largest page of task details."""
    track(runs, "busy", "r-busy", clock.now() - timedelta(hours=1))
    for i in range(30):
        kfp.finish(f"r-burst-{i}", clock.now() - timedelta(seconds=30 + i))
    tracker.poll()
    clock.step(10)
    tracker.poll()
    clock.step(10)
    for i in range(15):
        kfp.finish(f"r-next-{i}", clock.now() - timedelta(seconds=1 + i))
    tracker.poll()
    clock.step(10)
    tracker.poll()

    assert kfp.first_page_sizes == [None, 2 * 30, MIN_FIRST_PAGE, 2 * 15]


def test_a_late_report_older_than_what_was_recorded_makes_the_poll_read_on_until_it_is_found(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock
) -> None:
    track(runs, "late", "r-late", clock.now() - timedelta(hours=1))
    for i in range(5):
        kfp.finish(f"r-burst-{i}", clock.now() - timedelta(seconds=10 + i))
    tracker.poll()
    clock.step(10)

    kfp.finish("r-late", clock.now() - timedelta(minutes=3))  # the oldest finish: on the last page
    tracker.poll()

    assert kfp.pages_read == [3, 3]
    assert enqueued == [ObjectKey("ml", "late")]


def test_a_run_listed_before_its_run_recorded_it_is_observed_once_it_is_tracked(
    tracker: KfpRunTracker, kfp: ListOnlyKfp, runs: Store, enqueued: list[ObjectKey], clock: FakeClock
) -> None:
    """The KFP run finished before the status naming it reached the cache: a later poll, which
    does not list it again, still hands it to its Run."""
    track(runs, "other", "r-other", clock.now() - timedelta(hours=1))
    kfp.finish("r-quick", clock.now() - timedelta(seconds=5))
    tracker.poll()
    assert enqueued == []

    track(runs, "quick", "r-quick", clock.now() - timedelta(seconds=10))
    clock.step(10)
    tracker.poll()

    assert kfp.pages_read == [1, 1]
    assert enqueued == [ObjectKey("ml", "quick")]
    observation = tracker.observation("r-quick")
    assert observation is not None and observation.succeeded


def test_finished_runs_are_handed_over_in_batches_each_before_its_runs_are_enqueued(
    kfp: ListOnlyKfp, runs: Store, clock: FakeClock
) -> None:
    log: list[object] = []
    tracker = KfpRunTracker(
        kfp,  # type: ignore[arg-type]
        runs,
        lambda key: log.append(key.name),
        runs_synced=lambda: True,
        clock=clock,
        poll_interval=10,
        safety_check_interval=600,
        lookback=LOOKBACK,
        on_finished=lambda batch: log.append(sorted(o.run_id for o in batch)),
    )
    count = FINISHED_BATCH + 3
    for n in range(count):
        track(runs, f"run-{n:02}", f"r-{n:02}", clock.now() - timedelta(minutes=10))
        kfp.finish(f"r-{n:02}", clock.now() - timedelta(minutes=2), state="FAILED" if n == 0 else "SUCCEEDED")
    track(runs, "busy", "r-busy", clock.now() - timedelta(minutes=10))

    tracker.poll()
    clock.step(10)
    tracker.poll()

    batches = [entry for entry in log if isinstance(entry, list)]
    assert [len(b) for b in batches] == [FINISHED_BATCH, 3], "each finished run once, failed ones too"
    assert sorted(r for b in batches for r in b) == [f"r-{n:02}" for n in range(count)]
    for batch in batches:
        after = log[log.index(batch) + 1 : log.index(batch) + 1 + len(batch)]
        assert sorted(after) == sorted(r.replace("r-", "run-") for r in batch), (
            "a batch's Runs are enqueued right after it is handed over"
        )
