"""Reading the ML Metadata records of runs a bulk poll found succeeded together, a batch at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from controller.clock import FakeClock
from controller.store import Store
from reconcilers.artifacts.resolve import MetadataUnavailable, RunMetadata
from reconcilers.run.read_ahead import FAILURE_HOLD, MetadataReadAhead
from reconcilers.run.tracking import TRACKED_INDEX, KfpRunObservation, tracked_run_index
from tests.reconcilers.fakes import NOW, FakeMetadata, cached
from tests.support.objects import SEED_SPEC, run

PUSHER = frozenset({"Pusher"})
ONE_RUN = ["GetExecutions", "GetEventsByExecutionIDs", "GetArtifactsByID"]


def finished(run_id: str, state: str = "SUCCEEDED") -> KfpRunObservation:
    return KfpRunObservation(run_id, state, NOW - timedelta(hours=1), NOW)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runs() -> Store:
    return Store({TRACKED_INDEX: tracked_run_index})


@pytest.fixture
def metadata() -> FakeMetadata:
    return FakeMetadata()


@pytest.fixture
def read_ahead(metadata: FakeMetadata, runs: Store, clock: FakeClock) -> MetadataReadAhead:
    return MetadataReadAhead(metadata, runs, clock)


def submitted(runs: Store, metadata: FakeMetadata, n: int, *, artifacts: bool = True) -> str:
    """A submitted Run whose KFP run ``kfp-<n>`` wrote a pushed model; returns the KFP run id."""
    run_id = f"kfp-{n}"
    spec = dict(SEED_SPEC) if artifacts else {k: v for k, v in SEED_SPEC.items() if k != "artifacts"}
    runs.upsert(
        cached(run(name=f"run-{n}", uid=f"uid-{n}", spec=spec, status={"providerId": f"kfp:{run_id}"}))
    )
    metadata.add_output(run_id, "Pusher", "pushed_model", f"gs://pushed-{n}", pushed=1)
    return run_id


def uris(records: RunMetadata | None) -> list[str]:
    assert records is not None
    return [a.uri for a in records.artifacts.values()]


def test_nothing_is_read_until_a_run_of_the_batch_takes_its_records(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata
) -> None:
    wanted = [submitted(runs, metadata, n) for n in range(3)]
    failed = submitted(runs, metadata, 3)
    without_artifacts = submitted(runs, metadata, 4, artifacts=False)

    read_ahead.expect([*map(finished, wanted), finished(failed, "FAILED"), finished(without_artifacts)])
    assert metadata.calls == [], "the bulk poll's thread reads nothing"

    assert uris(read_ahead.take(wanted[1], PUSHER)) == ["gs://pushed-1"]
    assert metadata.calls == ["GetExecutions"] * 3 + ["GetEventsByExecutionIDs", "GetArtifactsByID"], (
        "the batch's succeeded runs that ask for artifacts, read together"
    )
    assert uris(read_ahead.take(wanted[0], PUSHER)) == ["gs://pushed-0"]
    assert uris(read_ahead.take(wanted[2], PUSHER)) == ["gs://pushed-2"]
    assert len(metadata.calls) == 5, "the batch-mates read nothing more"
    assert read_ahead.take(wanted[0], PUSHER) is None, "taken once"
    assert read_ahead.take(failed, PUSHER) is None
    assert read_ahead.take(without_artifacts, PUSHER) is None


def test_batches_are_read_apart(read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata) -> None:
    first, second = submitted(runs, metadata, 1), submitted(runs, metadata, 2)
    read_ahead.expect([finished(first)])
    read_ahead.expect([finished(second)])

    assert uris(read_ahead.take(first, PUSHER)) == ["gs://pushed-1"]
    assert uris(read_ahead.take(second, PUSHER)) == ["gs://pushed-2"]
    assert metadata.calls == ONE_RUN * 2


def test_a_batch_mate_taking_its_records_while_the_batch_is_read_waits_for_them(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata
) -> None:
    first, second = submitted(runs, metadata, 1), submitted(runs, metadata, 2)
    read_ahead.expect([finished(first), finished(second)])
    reading, go_on = threading.Event(), threading.Event()
    executions = metadata.get_executions_in_context

    def slow_executions(type_name: str, context_name: str):  # type: ignore[no-untyped-def]
        reading.set()
        go_on.wait(10)
        return executions(type_name, context_name)

    metadata.get_executions_in_context = slow_executions  # type: ignore[method-assign]
    taken: dict[str, RunMetadata | None] = {}
    reader = threading.Thread(target=lambda: taken.update({first: read_ahead.take(first, PUSHER)}))
    reader.start()
    assert reading.wait(10)
    mate = threading.Thread(target=lambda: taken.update({second: read_ahead.take(second, PUSHER)}))
    mate.start()
    go_on.set()
    reader.join(10)
    mate.join(10)

    assert uris(taken[first]) == ["gs://pushed-1"] and uris(taken[second]) == ["gs://pushed-2"]
    assert metadata.calls.count("GetEventsByExecutionIDs") == 1, "one read for both"


def test_records_read_for_other_components_are_not_given(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata
) -> None:
    run_id = submitted(runs, metadata, 1)
    read_ahead.expect([finished(run_id)])

    assert read_ahead.take(run_id, {"Pusher", "Trainer"}) is None  # the Run's spec changed since


def test_ml_metadata_failing_leaves_each_run_to_read_its_own_for_a_while(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    first, second, third = (submitted(runs, metadata, n) for n in (1, 2, 3))
    read_ahead.expect([finished(first)])
    read_ahead.expect([finished(second)])
    metadata.errors.append(MetadataUnavailable("GetExecutions", "DEADLINE_EXCEEDED", "timed out"))

    with capture_logs() as logs:
        assert read_ahead.take(first, PUSHER) is None  # does not raise: the Run reads its own
    assert [line["event"] for line in logs] == ["could not read ML Metadata ahead; Runs read their own"]

    # The next batch does not wait for ML Metadata again, until the hold is over.
    calls = len(metadata.calls)
    assert read_ahead.take(second, PUSHER) is None
    assert len(metadata.calls) == calls
    clock.step(FAILURE_HOLD)
    read_ahead.expect([finished(third)])
    assert uris(read_ahead.take(third, PUSHER)) == ["gs://pushed-3"]


def test_an_unexpected_failure_is_logged_and_leaves_each_run_to_read_its_own(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata
) -> None:
    run_id = submitted(runs, metadata, 1)
    read_ahead.expect([finished(run_id)])
    metadata.errors.append(RuntimeError("a bug"))

    with capture_logs() as logs:
        assert read_ahead.take(run_id, PUSHER) is None

    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("reading ML Metadata ahead failed; Runs read their own", "error")
    ]


def test_runs_no_reconcile_comes_for_are_forgotten_oldest_first(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock, max_kept=2)
    run_ids = [submitted(runs, metadata, n) for n in range(3)]
    no_reconcile_takes = [submitted(runs, metadata, 9, artifacts=False), "kfp-of-no-tracked-run"]

    read_ahead.expect([finished(run_ids[0])])
    read_ahead.expect([*(finished(r) for r in run_ids[1:]), *map(finished, no_reconcile_takes)])

    assert read_ahead.take(run_ids[0], PUSHER) is None
    assert metadata.calls == []
    assert uris(read_ahead.take(run_ids[1], PUSHER)) == ["gs://pushed-1"]
    assert uris(read_ahead.take(run_ids[2], PUSHER)) == ["gs://pushed-2"]


def test_a_failure_to_batch_does_not_stop_the_poll(
    read_ahead: MetadataReadAhead, runs: Store, metadata: FakeMetadata
) -> None:
    run_id = submitted(runs, metadata, 1)
    runs.upsert(
        cached(
            run(name="broken", uid="uid-b", spec={"artifacts": "not a list"}, status={"providerId": "kfp:b"})
        )
    )

    with capture_logs() as logs:
        read_ahead.expect([finished("b"), finished(run_id)])  # does not raise

    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("cannot batch the runs found finished; Runs read their own", "error")
    ]
    assert read_ahead.take(run_id, PUSHER) is None and metadata.calls == []
