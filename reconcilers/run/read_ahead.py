"""ML Metadata read ahead for the runs a bulk poll found succeeded.

A completed Run's artifacts are resolved from the ML Metadata records of its KFP run: three
calls when its reconcile reads them alone (``reconcilers.artifacts.resolve``). A bulk poll finds
runs finishing together (a burst's, hundreds per poll), so before it enqueues their Runs it reads
their records in batches: one call per run for its executions, and two per batch for all their
events and artifacts. The Run's reconcile then takes its records from here, and reads them itself
only when they are not here (its run was not found by a poll, the read ahead failed, or ML
Metadata did not know the run yet, which the reconcile's own read tells apart).

Reading ahead changes what is read only in when: a run's records are final once KFP reports it
succeeded, which is when the reconcile would have read them too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

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

# Records kept for Runs whose reconcile has not taken them yet; beyond it the oldest are dropped
# (their reconciles read for themselves). Normally taken within seconds of being read.
MAX_KEPT = 1000
# Seconds without reading ahead after ML Metadata failed to answer: each batch would otherwise
# wait out the client's timeout again before its Runs are enqueued, and the reconciles read
# (and say on each Run that ML Metadata is unavailable) with the work queue's backoff anyway.
FAILURE_HOLD = 30.0


class MetadataReadAhead:
    """Reads ahead the records of succeeded runs whose Runs ask for artifacts, until taken."""

    def __init__(self, store: MetadataReader, runs: Store, clock: Clock, *, max_kept: int = MAX_KEPT) -> None:
        self._store = store
        self._runs = runs
        self._clock = clock
        self._max_kept = max_kept
        self._held_until = float("-inf")
        self._lock = threading.Lock()
        # Per run id: the components the records were read for, and the records.
        self._kept: OrderedDict[str, tuple[frozenset[str], RunMetadata]] = OrderedDict()

    def read(self, finished: Sequence[KfpRunObservation]) -> None:
        """Reads the records of the succeeded runs among ``finished`` whose Runs ask for
        artifacts. Never raises: what is not read here, the reconcile reads."""
        if self._clock.monotonic() < self._held_until:
            return
        try:
            wanted = dict(self._components_by_run(o.run_id for o in finished if o.succeeded))
            found = read_runs_metadata(self._store, wanted) if wanted else {}
        except MetadataUnavailable as error:
            self._held_until = self._clock.monotonic() + FAILURE_HOLD
            log.info(
                "could not read ML Metadata ahead; Runs read their own",
                error=str(error),
                hold_seconds=FAILURE_HOLD,
            )
            return
        except Exception:  # reading ahead must never stop the bulk poll that calls it
            log.exception("reading ML Metadata ahead failed; Runs read their own")
            return
        with self._lock:
            for run_id, metadata in found.items():
                self._kept[run_id] = (frozenset(wanted[run_id]), metadata)
            while len(self._kept) > self._max_kept:
                self._kept.popitem(last=False)

    def take(self, run_id: str, components: Iterable[str]) -> RunMetadata | None:
        """The records read ahead for this run, if read for these components; each is taken once."""
        with self._lock:
            kept = self._kept.pop(run_id, None)
        if kept is None or kept[0] != frozenset(components):
            return None
        return kept[1]

    def _components_by_run(self, run_ids: Iterable[str]) -> Iterable[tuple[str, set[str]]]:
        for run_id in run_ids:
            for obj in self._runs.by_index(TRACKED_INDEX, run_id):
                artifacts = RunView(obj).spec.artifacts
                if artifacts:
                    yield run_id, components_of(artifacts)
