"""Resolving artifact paths from a run's ML Metadata records, as the KFP v2 launcher writes them."""

from __future__ import annotations

import pytest

from reconcilers.api.run import Artifact, OutputArtifactSpec
from reconcilers.artifacts import records
from reconcilers.artifacts.resolve import (
    RunMetadata,
    RunMetadataNotFound,
    read_run_metadata,
    read_runs_metadata,
    resolve_artifacts,
)
from tests.reconcilers.fakes import FakeMetadata


def execution(
    eid: int, task: str, display: str | None = None, state: str = records.COMPLETE
) -> records.Execution:
    strings = {"task_name": task, "display_name": display or task}
    return records.Execution(id=eid, type="system.ContainerExecution", state=state, strings=strings)


def output(eid: int, aid: int, key: str, index: int | None = None) -> records.Event:
    path: tuple[str | int, ...] = (key,) if index is None else (key, index)
    return records.Event(execution_id=eid, artifact_id=aid, type=records.OUTPUT, path=path)


def artifact(aid: int, uri: str, state: str = records.LIVE, **properties: object) -> records.Artifact:
    # Properties as filters see them: MLMD integers arrive as floats (see mlmd_values).
    seen = {k: float(v) if isinstance(v, int) else v for k, v in properties.items()}
    return records.Artifact(id=aid, uri=uri, state=state, properties=seen)


PUSHER = RunMetadata(
    executions=[execution(1, "trainer", "Trainer"), execution(2, "pusher", "Pusher")],
    events=[
        output(1, 10, "model"),
        output(2, 20, "pushed_model"),
        output(2, 21, "pushed_model"),
        output(2, 22, "executor-logs"),
    ],
    artifacts={
        10: artifact(10, "s3://model"),
        20: artifact(20, "s3://not-pushed", pushed=0),
        21: artifact(21, "s3://pushed", pushed=1),
        22: artifact(22, "s3://logs"),
    },
)


def resolve(*paths: str, metadata: RunMetadata = PUSHER):
    return resolve_artifacts([OutputArtifactSpec(f"a{i}", p) for i, p in enumerate(paths)], metadata)


def test_the_index_picks_an_artifact_first_and_the_filter_then_checks_that_one() -> None:
    # Outputs [{pushed: 0}, {pushed: 1}]: the reference takes output INDEX, then filters it.
    found, unresolved = resolve("Pusher:pushed_model:0[pushed == 1]", "Pusher:pushed_model:1[pushed == 1]")

    assert found == [Artifact("a1", "s3://pushed")]
    assert [(u.name, u.reason) for u in unresolved] == [
        ("a0", "artifact Pusher:pushed_model:0 does not match [pushed == 1]")
    ]


def test_without_an_index_the_filter_checks_the_first_output_only() -> None:
    found, unresolved = resolve("Pusher:pushed_model[pushed == 0]", "Pusher:pushed_model[pushed == 1]")

    assert found == [Artifact("a0", "s3://not-pushed")]
    assert [u.name for u in unresolved] == ["a1"]


def test_the_index_counts_the_outputs_in_artifact_id_order() -> None:
    found, _ = resolve("pusher:pushed_model:0", "pusher:pushed_model:1")

    assert found == [Artifact("a0", "s3://not-pushed"), Artifact("a1", "s3://pushed")]


def test_integer_properties_compare_as_the_reference_compared_them() -> None:
    # The reference saw MLMD integers JSON-decoded, as float64.
    found, _ = resolve("Pusher:pushed_model:1[pushed == 1.0]", 'Pusher:pushed_model:1[pushed == "0x1p0"]')

    assert [a.location for a in found] == ["s3://pushed", "s3://pushed"]


def test_component_matches_the_task_key_first_then_the_display_name() -> None:
    found, _ = resolve("trainer:model", "Trainer:model")

    assert [a.location for a in found] == ["s3://model", "s3://model"]


def test_the_latest_finished_execution_of_a_retried_task_is_used() -> None:
    metadata = RunMetadata(
        executions=[execution(1, "t"), execution(2, "t"), execution(3, "t", state="FAILED")],
        events=[output(1, 10, "o"), output(2, 20, "o"), output(3, 30, "o")],
        artifacts={
            10: artifact(10, "s3://first"),
            20: artifact(20, "s3://retry"),
            30: artifact(30, "s3://f"),
        },
    )

    found, _ = resolve("t:o", metadata=metadata)

    assert found == [Artifact("a0", "s3://retry")]


def test_tfx_index_steps_order_the_artifacts() -> None:
    metadata = RunMetadata(
        executions=[execution(1, "t")],
        events=[output(1, 20, "o", index=1), output(1, 10, "o", index=0)],
        artifacts={10: artifact(10, "s3://zero"), 20: artifact(20, "s3://one")},
    )

    found, _ = resolve("t:o:1", metadata=metadata)

    assert found == [Artifact("a0", "s3://one")]


def test_a_missing_property_does_not_match_and_says_why() -> None:
    found, unresolved = resolve("trainer:model[pushed != 1]")

    assert found == []
    assert unresolved[0].reason == (
        "artifact trainer:model:0 does not match [pushed != 1]: the artifact has no property 'pushed'"
    )


def test_unresolved_definitions_say_why() -> None:
    _, unresolved = resolve("Evaluator:blessing", "Pusher:model", "Pusher:pushed_model:5")

    assert [u.reason for u in unresolved] == [
        "no finished task Evaluator in the run",
        "task Pusher has no output model",
        "output Pusher:pushed_model has 2 artifact(s) and no index 5",
    ]


def test_a_deleted_artifact_or_one_without_a_uri_is_not_resolved_but_keeps_its_index() -> None:
    metadata = RunMetadata(
        executions=[execution(1, "t")],
        events=[output(1, 10, "o"), output(1, 11, "o"), output(1, 12, "o"), output(1, 13, "o")],
        artifacts={
            10: artifact(10, "s3://gone", state="DELETED"),
            11: artifact(11, "s3://live"),
            12: artifact(12, ""),
        },
    )

    found, unresolved = resolve("t:o:0", "t:o:1", "t:o:2", "t:o:3", metadata=metadata)

    assert found == [Artifact("a1", "s3://live")]
    assert [u.reason for u in unresolved] == [
        "artifact t:o:0 is DELETED, not LIVE",
        "artifact t:o:2 has no URI",
        "artifact t:o:3 (id 13) is not in ML Metadata",
    ]


class RecordingStore:
    """An in-memory MLMD reader that records which calls resolution makes: run-1 has the
    Pusher's records, run-empty a context without executions, any other run no context."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_executions_in_context(self, type_name, context_name):
        self.calls.append("executions")
        return list(PUSHER.executions) if context_name == "run-1" else []

    def get_context_id(self, type_name, context_name):
        self.calls.append("context")
        return {"run-1": 7, "run-empty": 8}.get(context_name)

    def get_events_by_execution_ids(self, execution_ids):
        self.calls.append("events")
        return [e for e in PUSHER.events if e.execution_id in set(execution_ids)]

    def get_artifacts_by_id(self, artifact_ids):
        self.calls.append("artifacts")
        return [PUSHER.artifacts[i] for i in artifact_ids]


def test_reading_a_runs_metadata_takes_three_calls_and_only_the_named_components() -> None:
    store = RecordingStore()

    metadata = read_run_metadata(store, "run-1", {"Pusher"})

    assert store.calls == ["executions", "events", "artifacts"]
    assert [e.id for e in metadata.executions] == [2]
    assert sorted(metadata.artifacts) == [20, 21, 22]


def test_a_run_without_executions_is_told_from_a_run_ml_metadata_does_not_know() -> None:
    store = RecordingStore()

    empty = read_run_metadata(store, "run-empty", {"Pusher"})
    with pytest.raises(RunMetadataNotFound, match=r"no system\.PipelineRun context named run-unknown"):
        read_run_metadata(store, "run-unknown", {"Pusher"})

    assert empty == RunMetadata(executions=[], events=[], artifacts={})
    assert store.calls == ["executions", "context", "executions", "context"]


def test_several_runs_are_read_with_one_call_each_and_two_for_them_all() -> None:
    store = FakeMetadata()
    store.add_output("run-a", "Pusher", "pushed_model", "s3://a/pushed", pushed=1)
    store.add_output("run-a", "Trainer", "model", "s3://a/model")
    store.add_output("run-b", "Pusher", "pushed_model", "s3://b/pushed", pushed=0)
    store.add_output("run-b", "Pusher", "pushed_model", "s3://b/pushed-again", pushed=1)
    wanted = {"run-a": {"Pusher"}, "run-b": {"Pusher", "Trainer"}, "run-unknown": {"Pusher"}}

    together = read_runs_metadata(store, wanted)

    assert store.calls == ["GetExecutions"] * 3 + ["GetEventsByExecutionIDs", "GetArtifactsByID"]
    assert together.keys() == {"run-a", "run-b"}, "a run without executions is left out"
    for run_id in ("run-a", "run-b"):
        alone = read_run_metadata(store, run_id, wanted[run_id])
        assert together[run_id] == alone, run_id
    assert {a.uri for a in together["run-a"].artifacts.values()} == {"s3://a/pushed"}, (
        "each run holds its own records only"
    )
    paths = [OutputArtifactSpec("pushed", "Pusher:pushed_model:0")]  # the latest Pusher
    assert resolve_artifacts(paths, together["run-b"]) == ([Artifact("pushed", "s3://b/pushed-again")], [])


def test_runs_whose_components_ran_nothing_are_read_without_events_or_artifacts() -> None:
    store = FakeMetadata()
    store.add_output("run-a", "Trainer", "model", "s3://a/model")

    assert read_runs_metadata(store, {"run-a": {"Pusher"}}) == {
        "run-a": RunMetadata(executions=[], events=[], artifacts={})
    }
    assert store.calls == ["GetExecutions"]
