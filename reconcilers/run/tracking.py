"""The KFP run a Run tracks: how it is marked and found again, what is observed of it, and how
the operator learns that it finished.

**Marking.** KFP has no idempotency key and run display names are not unique, so every run the
operator creates carries a marker derived from the Run's UID in its description. Whenever a run
may already exist for a Run, the operator looks for that marker before creating one and adopts
what it finds: a crash between create and the status write, a lost response or a retried create
can therefore never produce a second run.

**Observing.** :class:`KfpRunObservation` is what the operator keeps of a KFP run: its id,
state and times.

**Tracking.** KFP offers no watch, and asking about each tracked run on every poll would cost
one call per Run per interval. Instead :class:`KfpRunTracker` asks, one list call per page, for
the runs *the operator created* (their description carries the marker) that finished since the
last poll, and enqueues only the tracked Runs among them. The cost of a poll therefore grows
with the pages of runs that changed, not with the number of Runs being tracked; with nothing
tracked, nothing is asked. The finished runs a poll finds are handed to ``on_finished`` a batch
at a time before their Runs are enqueued (the run controller then reads the ML Metadata records
of a batch together: ``reconcilers.run.read_ahead``).

A finished run becomes visible in KFP with some delay after its ``finished_at`` (the
persistence agent reports it), so each poll looks back a little before the newest finish time
it has seen. That watermark only moves when a newer run finishes, so on its own it would make
every poll of an idle cluster list the last burst of finished runs again; the look-back is
therefore also counted from the previous poll's start, which lets a finished run drop out of the
polls one look-back after it finished. The first poll after start looks back to the oldest
tracked Run's start, which finds completions that happened while the operator was down.

**Not listing again what was recorded.** Within the look-back a poll would list every run that
finished there again, though earlier polls recorded them: after a burst of 1,000 runs, five
pages per poll for five minutes. So the tracker keeps the ids of the finished runs it listed
while they are within the look-back, asks for the newest first, and stops asking for pages once
KFP's count of the matches (``total_size``) is made up of runs it recorded before and runs it
has just been given: usually after the first page. A run reported late, with an older finish
time, is not in that count's recorded part, so the pages go on until it is found.

Whatever a poll could still miss (a report delayed beyond the look-back, clocks further apart
than it, a run deleted in KFP while another was reported late within the same look-back) is
caught by the Run reconciler's slow per-Run safety check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from controller.clock import Clock
from controller.keys import ObjectKey
from controller.store import Store
from reconcilers.api.run import RunView
from reconcilers.clients import KfpError, KfpRuns
from reconcilers.timestamps import format_time, parse_time

log = structlog.get_logger(__name__)

# -- marking -----------------------------------------------------------------------------------

# Everything the operator creates has this in its description; the UID follows it.
MARKER_PREFIX = "kfp-operator/run-uid="


def marker(run_uid: str) -> str:
    return f"{MARKER_PREFIX}{run_uid}"


def description(run: RunView) -> str:
    return f"Run {run.namespaced_name} created by kfp-operator. {marker(run.uid)}"


def run_uid_from_description(text: str | None) -> str | None:
    """The Run UID a KFP run was created for, if the operator created it."""
    if not text or MARKER_PREFIX not in text:
        return None
    return text.rpartition(MARKER_PREFIX)[2].split()[0] or None


def marked_filter(run_uid: str) -> dict[str, Any]:
    """The KFP list filter that finds the runs created for a Run."""
    return {
        "predicates": [{"key": "description", "operation": "IS_SUBSTRING", "string_value": marker(run_uid)}]
    }


def find_marked_run(kfp: KfpRuns, run: RunView) -> dict[str, Any] | None:
    """The KFP run created for this Run before, if any (the oldest, should there be several)."""
    matches = list(
        kfp.list_runs(filter=marked_filter(run.uid), sort_by="created_at", namespace=run.namespace)
    )
    if len(matches) > 1:
        log.warning("several KFP runs carry this Run's marker; adopting the oldest", count=len(matches))
    return matches[0] if matches else None


# -- observing ---------------------------------------------------------------------------------

# KFP run states (V2beta1RuntimeState) and what they mean for a Run.
KFP_TERMINAL_SUCCESS = frozenset({"SUCCEEDED"})
KFP_TERMINAL_FAILURE = frozenset({"FAILED", "CANCELED", "SKIPPED"})
KFP_TERMINAL = KFP_TERMINAL_SUCCESS | KFP_TERMINAL_FAILURE
# States a run can be terminated from (the server refuses the others).
KFP_ACTIVE = frozenset({"PENDING", "RUNNING", "PAUSED", "RUNTIME_STATE_UNSPECIFIED"})
UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"


@dataclass(frozen=True)
class KfpRunObservation:
    """What the operator knows of a KFP run."""

    run_id: str
    state: str
    created_at: datetime | None
    finished_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        return self.state in KFP_TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.state in KFP_TERMINAL_SUCCESS


def observation_from(kfp_run: Mapping[str, Any]) -> KfpRunObservation:
    return KfpRunObservation(
        run_id=kfp_run["run_id"],
        state=kfp_run.get("state", UNSPECIFIED),
        created_at=parse_time(kfp_run.get("created_at")),
        finished_at=parse_time(kfp_run.get("finished_at")),
    )


def is_active(kfp_run: Mapping[str, Any]) -> bool:
    return kfp_run.get("state", UNSPECIFIED) in KFP_ACTIVE


# -- tracking ----------------------------------------------------------------------------------

# Index of the Run cache: the KFP run id of every submitted Run that has not completed.
TRACKED_INDEX = "kfp-run-id/incomplete"
DEFAULT_LOOKBACK = timedelta(minutes=5)
# The smallest first page a poll asks for once it has recorded what is in the look-back (KFP's
# own default page size). A poll usually finds few new runs on top of those it recorded, and
# each run comes with its task details: a full page of 200 is over a megabyte for KFP to render.
MIN_FIRST_PAGE = 20
# Finished runs are handed to ``on_finished`` this many at a time: the Runs whose ML Metadata
# records are read together (a poll in a burst finds hundreds).
FINISHED_BATCH = 20


def tracked_run_index(obj: Mapping[str, Any]) -> list[str]:
    view = RunView(obj)
    run_id = view.kfp_run_id
    return [run_id] if run_id and not view.is_completed else []


def finished_since_filter(since: datetime) -> dict[str, Any]:
    return {
        "predicates": [
            {"key": "finished_at", "operation": "GREATER_THAN_EQUALS", "timestamp_value": format_time(since)},
            {"key": "description", "operation": "IS_SUBSTRING", "string_value": MARKER_PREFIX},
        ]
    }


class KfpRunTracker:
    """Keeps what bulk polls learnt about tracked KFP runs, and enqueues the Runs that changed."""

    def __init__(
        self,
        kfp: KfpRuns,
        runs: Store,
        enqueue: Callable[[ObjectKey], None],
        *,
        runs_synced: Callable[[], bool],
        clock: Clock,
        poll_interval: float,
        safety_check_interval: float,
        lookback: timedelta = DEFAULT_LOOKBACK,
        on_finished: Callable[[Sequence[KfpRunObservation]], None] | None = None,
    ) -> None:
        """``on_finished`` is given the runs a poll found finished, a batch at a time, before
        their Runs are enqueued (the run controller reads the ML Metadata records of a batch
        together)."""
        self._kfp = kfp
        self._on_finished = on_finished
        self._runs = runs
        self._enqueue = enqueue
        self._runs_synced = runs_synced
        self._clock = clock
        self._poll_interval = poll_interval
        self._safety_check_interval = safety_check_interval
        self._lookback = lookback
        self._lock = threading.Lock()
        self._observed: dict[str, KfpRunObservation] = {}
        self._last_checked: dict[str, float] = {}
        self._watermark: datetime | None = None
        self._last_poll_started: datetime | None = None
        # Per KFP namespace: the finished runs polls listed, by id, while the look-back still
        # covers them (only the poll's thread uses it).
        self._listed: dict[str, dict[str, KfpRunObservation]] = {}
        # Per KFP namespace: how many runs the last poll found that it had not recorded.
        self._found_last: dict[str, int] = {}
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what reconcilers ask ----------------------------------------------------------------

    def has_synced(self) -> bool:
        """True once a first poll has covered every Run tracked at start-up."""
        return self._synced.is_set()

    def observation(self, run_id: str) -> KfpRunObservation | None:
        """The terminal state a poll saw for this run, if any."""
        with self._lock:
            return self._observed.get(run_id)

    def record(self, observation: KfpRunObservation) -> None:
        """Records what a direct read of the run returned (the safety check)."""
        with self._lock:
            self._last_checked[observation.run_id] = self._clock.monotonic()
            if observation.is_terminal:
                self._observed[observation.run_id] = observation

    def seconds_until_safety_check(self, run_id: str) -> float:
        """When the Run should next read its KFP run directly; 0 means now."""
        with self._lock:
            last = self._last_checked.setdefault(run_id, self._clock.monotonic())
        return max(0.0, last + self._safety_check_interval - self._clock.monotonic())

    # -- polling -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kfp-run-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        # The first poll must see every Run, or it would not look back far enough.
        while not self._runs_synced():
            if self._stop.wait(0.1):
                return
        while not self._stop.is_set():
            try:
                self.poll()
            except KfpError as error:
                log.warning("polling KFP for finished runs failed; retrying next interval", error=str(error))
            self._stop.wait(self._poll_interval)

    def poll(self) -> None:
        """One bulk poll: list the operator's runs finished since the watermark, enqueue tracked ones."""
        tracked = set(self._runs.index_values(TRACKED_INDEX))
        self._prune(tracked)
        if not tracked:
            self._synced.set()
            return
        first = self._watermark is None
        since = self._since(tracked)
        started = self._clock.now()
        newest = self._watermark
        namespaces = self._namespaces(tracked)
        for namespace in list(self._listed.keys() - set(namespaces)):
            del self._listed[namespace]
            del self._found_last[namespace]
        for namespace in namespaces:
            first_page_size = self._first_page_size(namespace)
            listed = self._listed.setdefault(namespace, {})
            for run_id in [
                r for r, seen in listed.items() if seen.finished_at is None or seen.finished_at < since
            ]:
                del listed[run_id]  # the filter no longer matches it
            recorded, new = len(listed), 0
            matching: int | None = None
            for page in self._kfp.list_run_pages(
                filter=finished_since_filter(since),
                sort_by="finished_at desc",
                namespace=namespace,
                first_page_size=first_page_size,
            ):
                # The count when the listing began. Pages follow a cursor, so runs finishing
                # while later pages are read sort above them, unseen by this poll (the next one
                # lists them), yet later pages count them: in a burst, where runs finish all
                # the time, comparing with those counts would read every page of the look-back.
                if matching is None:
                    matching = page.total_size
                for kfp_run in page.runs:
                    observation = observation_from(kfp_run)
                    if observation.run_id in listed:
                        continue
                    new += 1
                    listed[observation.run_id] = observation
                    if observation.finished_at is not None and (
                        newest is None or observation.finished_at > newest
                    ):
                        newest = observation.finished_at
                if matching is not None and matching <= recorded + new:
                    break  # every match was recorded by an earlier poll or is on the pages just read
            self._found_last[namespace] = new
            # Including runs listed before their Run recorded them (a run that finished before
            # the status naming it reached the cache).
            self._observe_finished([o for r, o in listed.items() if r in tracked and o.is_terminal])
        self._watermark = newest or since
        self._last_poll_started = started
        if first:
            # The first poll covered every tracked run's whole life: none needs a direct read now.
            now = self._clock.monotonic()
            with self._lock:
                for run_id in tracked:
                    self._last_checked.setdefault(run_id, now)
        self._synced.set()

    def _first_page_size(self, namespace: str) -> int | None:
        """Room on the first page for twice the runs the last poll found; None (the largest
        page) for a namespace no poll has listed yet."""
        found = self._found_last.get(namespace)
        return None if found is None else max(MIN_FIRST_PAGE, 2 * found)

    def _observe_finished(self, finished: Sequence[KfpRunObservation]) -> None:
        """Records the runs not observed before and enqueues their Runs, a batch at a time,
        each batch handed to ``on_finished`` first."""
        with self._lock:
            new = [o for o in finished if o.run_id not in self._observed]
        for start in range(0, len(new), FINISHED_BATCH):
            batch = new[start : start + FINISHED_BATCH]
            if self._on_finished is not None:
                self._on_finished(batch)
            for observation in batch:
                self._observe(observation)

    def _observe(self, observation: KfpRunObservation) -> None:
        with self._lock:
            if observation.run_id in self._observed:
                return
            self._observed[observation.run_id] = observation
        for key in self._runs.index_keys(TRACKED_INDEX, observation.run_id):
            self._enqueue(key)

    def _since(self, tracked: Iterable[str]) -> datetime:
        # Whole seconds, as the filter sends it: what was listed is forgotten exactly when the
        # filter stops matching it.
        return _whole_seconds(self._since_exact(tracked))

    def _since_exact(self, tracked: Iterable[str]) -> datetime:
        if self._watermark is not None:
            since = self._watermark - self._lookback
            if self._last_poll_started is not None:
                since = max(since, self._last_poll_started - self._lookback)
            return since
        started = [
            parse_time((obj.get("status") or {}).get("startedAt"))
            for run_id in tracked
            for obj in self._runs.by_index(TRACKED_INDEX, run_id)
        ]
        known = [s for s in started if s is not None]
        return (min(known) if known else self._clock.now()) - self._lookback

    def _namespaces(self, tracked: Iterable[str]) -> list[str]:
        """KFP namespaces to list: one call sequence per namespace in multi-user mode, else one."""
        if not self._kfp.multi_user:
            return [""]
        return sorted(
            {key.namespace for run_id in tracked for key in self._runs.index_keys(TRACKED_INDEX, run_id)}
        )

    def _prune(self, tracked: set[str]) -> None:
        """Forgets runs that are no longer tracked (completed or deleted Runs)."""
        with self._lock:
            for run_id in self._observed.keys() - tracked:
                del self._observed[run_id]
            for run_id in self._last_checked.keys() - tracked:
                del self._last_checked[run_id]


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
