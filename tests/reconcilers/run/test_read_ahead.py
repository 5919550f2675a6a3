"""Reading ahead the ML Metadata records of runs a bulk poll found succeeded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from controller.clock import FakeClock
from controller.store import Store
from reconcilers.artifacts.resolve import MetadataUnavailable
from reconcilers.run.read_ahead import FAILURE_HOLD, MetadataReadAhead
from reconcilers.run.tracking import TRACKED_INDEX, KfpRunObservation, tracked_run_index
from tests.reconcilers.fakes import NOW, FakeMetadata, cached
from tests.support.objects import SEED_SPEC, run

PUSHER = frozenset({"Pusher"})


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


def submitted(runs: Store, metadata: FakeMetadata, n: int, *, artifacts: bool = True) -> str:
    """A submitted Run whose KFP run ``kfp-<n>`` wrote a pushed model; returns the KFP run id."""
    run_id = f"kfp-{n}"
    spec = dict(SEED_SPEC) if artifacts else {k: v for k, v in SEED_SPEC.items() if k != "artifacts"}
    runs.upsert(
        cached(run(name=f"run-{n}", uid=f"uid-{n}", spec=spec, status={"providerId": f"kfp:{run_id}"}))
    )
    metadata.add_output(run_id, "Pusher", "pushed_model", f"gs://pushed-{n}", pushed=1)
    return run_id


def test_only_succeeded_runs_whose_runs_ask_for_artifacts_are_read_all_together(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock)
    wanted = [submitted(runs, metadata, n) for n in range(3)]
    failed = submitted(runs, metadata, 3)
    without_artifacts = submitted(runs, metadata, 4, artifacts=False)

    read_ahead.read([*map(finished, wanted), finished(failed, "FAILED"), finished(without_artifacts)])

    assert metadata.calls == ["GetExecutions"] * 3 + ["GetEventsByExecutionIDs", "GetArtifactsByID"]
    for n, run_id in enumerate(wanted):
        records = read_ahead.take(run_id, PUSHER)
        assert records is not None and [a.uri for a in records.artifacts.values()] == [f"gs://pushed-{n}"]
        assert read_ahead.take(run_id, PUSHER) is None, "taken once"
    assert read_ahead.take(failed, PUSHER) is None
    assert read_ahead.take(without_artifacts, PUSHER) is None


def test_records_read_for_other_components_are_not_given(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock)
    run_id = submitted(runs, metadata, 1)
    read_ahead.read([finished(run_id)])

    assert read_ahead.take(run_id, {"Pusher", "Trainer"}) is None  # the Run's spec changed since


def test_ml_metadata_failing_is_left_to_the_reconciles_for_a_while(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock)
    first, second = submitted(runs, metadata, 1), submitted(runs, metadata, 2)
    metadata.errors.append(MetadataUnavailable("GetExecutions", "DEADLINE_EXCEEDED", "timed out"))

    with capture_logs() as logs:
        read_ahead.read([finished(first)])  # does not raise: the poll goes on
    assert read_ahead.take(first, PUSHER) is None
    assert [line["event"] for line in logs] == ["could not read ML Metadata ahead; Runs read their own"]

    # The next batches do not wait for ML Metadata again, until the hold is over.
    calls = len(metadata.calls)
    read_ahead.read([finished(second)])
    assert len(metadata.calls) == calls
    clock.step(FAILURE_HOLD)
    read_ahead.read([finished(second)])
    assert read_ahead.take(second, PUSHER) is not None


def test_an_unexpected_failure_does_not_stop_the_poll(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock)
    run_id = submitted(runs, metadata, 1)
    metadata.errors.append(RuntimeError("a bug"))

    with capture_logs() as logs:
        read_ahead.read([finished(run_id)])

    assert read_ahead.take(run_id, PUSHER) is None
    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("reading ML Metadata ahead failed; Runs read their own", "error")
    ]


def test_records_no_reconcile_takes_are_dropped_oldest_first(
    runs: Store, metadata: FakeMetadata, clock: FakeClock
) -> None:
    read_ahead = MetadataReadAhead(metadata, runs, clock, max_kept=2)
    run_ids = [submitted(runs, metadata, n) for n in range(3)]

    read_ahead.read([finished(run_ids[0])])
    read_ahead.read([finished(r) for r in run_ids[1:]])

    assert read_ahead.take(run_ids[0], PUSHER) is None
    assert read_ahead.take(run_ids[1], PUSHER) is not None
    assert read_ahead.take(run_ids[2], PUSHER) is not None
