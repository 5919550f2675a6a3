"""ML Metadata read ahead for the runs a bulk poll found succeeded together.

A completed Run's artifacts are resolved from the ML Metadata records of its KFP run: three
calls when its reconcile reads them alone (``reconcilers.artifacts.resolve``), each costing the
operator about as much CPU as the next however little it carries. A bulk poll finds runs that
finished together (a burst's, hundreds per poll) and hands them over in batches before it
enqueues their Runs (:meth:`MetadataReadAhead.expect`: no I/O on the poll's thread). The first
Run of a batch whose reconcile wants its records reads those of the whole batch: the executions
run by run (ML Metadata does not say which run's context an execution came from), then all
their events in one call and all their artifacts in one more. Its batch-mates' reconciles take
theirs from here.

The reads happen where they did before, in the reconcile that completes a Run, so they come no
sooner (a burst's submissions are not held up by them) and a slow ML Metadata holds a worker,
never the bulk poll. A Run whose records are not here reads its own: a run found by the per-Run
safety check, a batch whose read failed, a spec whose artifacts changed since, or a run ML
Metadata did not know yet (which the Run's own read tells apart).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from controller.clock import Clock
from controller.store import Store
from reconcilers.api.run import RunView
from reconcilers.artifacts.resolve import (
    MetadataReader,
    MetadataUnavailable,
    RunMetadata,
    components_of,
    read_runs_metadata,
)
from reconcilers.run.tracking import TRACKED_INDEX, KfpRunObservation

log = structlog.get_logger(__name__)

# Runs expected and records kept for Runs whose reconcile has not come yet; beyond it the oldest
# are forgotten (those Runs read their own). Normally taken within seconds.
MAX_KEPT = 1000
# Seconds without reading ahead after ML Metadata failed to answer: each batch's first Run would
# otherwise wait out the client's timeout for the batch before reading (and failing) its own.
FAILURE_HOLD = 30.0

V = TypeVar("V")


@dataclass(eq=False)
class _Batch:
    # Per run id: the components its Run's artifacts name, as the poll found it.
    components: dict[str, frozenset[str]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    read: bool = False


class MetadataReadAhead:
    """Batches of succeeded runs, and the records read for them until each Run takes its own."""

    def __init__(self, store: MetadataReader, runs: Store, clock: Clock, *, max_kept: int = MAX_KEPT) -> None:
        self._store = store
        self._runs = runs
        self._clock = clock
        self._max_kept = max_kept
        self._held_until = float("-inf")
        self._lock = threading.Lock()
        # Per run id: the batch it came in, until its records are taken.
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        # Per run id: the components the records were read for, and the records.
        self._kept: OrderedDict[str, tuple[frozenset[str], RunMetadata]] = OrderedDict()

    def expect(self, finished: Sequence[KfpRunObservation]) -> None:
        """Takes note of the runs found finished together (the bulk poll's batch) that succeeded
        and whose Runs ask for artifacts: the Runs that will take their records. Reads nothing,
        and never raises (it runs on the bulk poll's thread)."""
        try:
            batch = _Batch(dict(self._components_by_run(o.run_id for o in finished if o.succeeded)))
        except Exception:  # reading ahead is an economy: never the reason a poll stops
            log.exception("cannot batch the runs found finished; Runs read their own")
            return
        if not batch.components:
            return
        with self._lock:
            for run_id in batch.components:
                self._batches[run_id] = batch
            _trim(self._batches, self._max_kept)

    def take(self, run_id: str, components: Iterable[str]) -> RunMetadata | None:
        """The run's records, if it came in a batch: read now with its batch-mates' unless a
        batch-mate read them already; None when the Run has to read its own."""
        with self._lock:
            batch = self._batches.pop(run_id, None)
        if batch is not None:
            with batch.lock:  # a batch-mate reading the batch now: wait for its records
                if not batch.read:
                    batch.read = True
                    self._read(batch)
        with self._lock:
            kept = self._kept.pop(run_id, None)
        if kept is None or kept[0] != frozenset(components):
            return None
        return kept[1]

    def _read(self, batch: _Batch) -> None:
        """Reads the records of the batch's runs whose Runs ask for artifacts. Never raises: what
        is not read here, each Run reads for itself."""
        if self._clock.monotonic() < self._held_until:
            return
        try:
            found = read_runs_metadata(self._store, batch.components)
        except MetadataUnavailable as error:
            self._held_until = self._clock.monotonic() + FAILURE_HOLD
            log.info(
                "could not read ML Metadata ahead; Runs read their own",
                error=str(error),
                hold_seconds=FAILURE_HOLD,
            )
            return
        except Exception:  # nor the reason a Run cannot complete
            log.exception("reading ML Metadata ahead failed; Runs read their own")
            return
        with self._lock:
            for run_id, metadata in found.items():
                self._kept[run_id] = (batch.components[run_id], metadata)
            _trim(self._kept, self._max_kept)

    def _components_by_run(self, run_ids: Iterable[str]) -> Iterable[tuple[str, frozenset[str]]]:
        """The runs whose Runs ask for artifacts, with the components their paths name."""
        for run_id in run_ids:
            for obj in self._runs.by_index(TRACKED_INDEX, run_id):
                artifacts = RunView(obj).spec.artifacts
                if artifacts:
                    yield run_id, frozenset(components_of(artifacts))


def _trim(entries: OrderedDict[str, V], most: int) -> None:
    while len(entries) > most:
        entries.popitem(last=False)
