"""The Run reconciler, one reconcile at a time: cached objects and KFP state in; requests made,
status written, Events recorded and the requeue out (sample-controller's fixture style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller.keys import ObjectKey
from controller.reconcile import Result, TerminalError
from reconcilers.api import FINALIZER
from reconcilers.api.run import RunSpec, run_version
from reconcilers.artifacts.resolve import MetadataUnavailable
from reconcilers.clients import KfpError
from reconcilers.completion_event.delivery import EventDelivery
from reconcilers.completion_event.event import event_id
from reconcilers.run.read_ahead import MetadataReadAhead
from reconcilers.run.reconciler import SINK_FAILURE_HOLD, RunReconciler, RunSettings
from reconcilers.run.resolve import PipelineVersion
from reconcilers.run.tracking import (
    TRACKED_INDEX,
    KfpRunObservation,
    KfpRunTracker,
    marker,
    tracked_run_index,
)
from tests.reconcilers.fakes import NOW, Fixture, RecordingSink
from tests.reconcilers.resource_fakes import condition, fails_quietly_again, written
from tests.support.objects import SEED_SPEC, run, run_configuration

RC = "penguin-pipeline-example-generator-runconfiguration"
KEY = ObjectKey("ns", "penguin-run-x")
UID = "0b1c2d3e-0000-4000-8000-000000000001"
SAFETY_CHECK = 600.0
RECHECK = 30.0

SUBMITTED = {"providerId": "kfp:kfp-7", "synchronizationState": "Succeeded", "observedGeneration": 1}


def with_examples() -> dict[str, Any]:
    return run_configuration(
        RC, succeeded={"providerId": "kfp:up", "artifacts": [{"name": "examples", "location": "gs://ex"}]}
    )


def reconciler(
    f: Fixture,
    *,
    deletion_timeout: float = 600.0,
    sinks: bool = True,
    delivering_to: list[RecordingSink] | None = None,
    read_ahead: MetadataReadAhead | None = None,
) -> RunReconciler:
    tracker = KfpRunTracker(
        f.kfp,
        f.runs,
        lambda key: None,
        runs_synced=lambda: True,
        clock=f.clock,
        poll_interval=10.0,
        safety_check_interval=SAFETY_CHECK,
    )
    return RunReconciler(
        runs=f.runs,
        run_configurations=f.run_configurations,
        kube=f.kube,
        kfp=f.kfp,
        catalog=f.catalog,
        tracker=tracker,
        metadata=f.metadata,
        recorder=f.recorder,
        metrics=f.metrics,
        clock=f.clock,
        settings=RunSettings(
            provider="kfp",
            default_experiment="Default",
            dependency_recheck_interval=RECHECK,
            deletion_timeout=timedelta(seconds=deletion_timeout),
            sinks_configured=sinks,
            deletion_recheck_interval=HELD,
        ),
        delivery=EventDelivery(sinks=delivering_to or [], metrics=f.metrics, clock=f.clock, provider="kfp"),
        read_ahead=read_ahead,
    )


# ---- before submission ------------------------------------------------------------------------


@dataclass
class SubmitCase:
    name: str
    run: dict[str, Any]
    rcs: list[dict[str, Any]] = field(default_factory=lambda: [with_examples()])
    pipelines: dict[str, str] | None = None
    marked_run: bool = False
    create_error: KfpError | None = None
    kube: list[str] = field(default_factory=list)
    kfp: list[str] = field(default_factory=list)
    status: dict[str, Any] | None = None
    reason: str | None = None
    events: list[str] = field(default_factory=list)
    result: Result | type[Exception] = field(default_factory=Result)


SUBMIT_CASES = [
    SubmitCase(
        "a new Run gets the finalizer first, then exactly one create, without a lookup",
        run(),
        kube=["add_finalizer", "patch_status"],
        kfp=["create_run"],
        status={
            "providerId": "kfp:kfp-1",
            "synchronizationState": "Succeeded",
            "observedPipelineVersion": "v1-abcdef",
        },
        events=["Submitted"],
        result=Result(requeue_after=SAFETY_CHECK),
    ),
    SubmitCase(
        "a Run that already had the finalizer adopts the KFP run carrying its marker",
        run(finalizers=[FINALIZER]),
        marked_run=True,
        kube=["patch_status"],
        kfp=["list_runs"],
        status={"providerId": "kfp:marked", "synchronizationState": "Succeeded"},
        events=["Submitted"],
        result=Result(requeue_after=SAFETY_CHECK),
    ),
    SubmitCase(
        "a Run that already had the finalizer but no marked run creates one after the lookup",
        run(finalizers=[FINALIZER]),
        kube=["patch_status"],
        kfp=["list_runs", "create_run"],
        status={"providerId": "kfp:kfp-1"},
        events=["Submitted"],
        result=Result(requeue_after=SAFETY_CHECK),
    ),
    SubmitCase(
        "a marked run is adopted before resolving, even when resolving again would wait",
        run(finalizers=[FINALIZER]),
        rcs=[],
        marked_run=True,
        kube=["patch_status"],
        kfp=["list_runs"],
        status={"providerId": "kfp:marked", "synchronizationState": "Succeeded"},
        events=["Submitted"],
        result=Result(requeue_after=SAFETY_CHECK),
    ),
    SubmitCase(
        "a missing RunConfiguration makes the Run wait for a watch event, asking KFP nothing",
        run(),
        rcs=[],
        kube=["patch_status"],
        status={"synchronizationState": "Creating"},
        reason="RunConfigurationNotFound",
        events=["RunConfigurationNotFound"],
        result=Result(),
    ),
    SubmitCase(
        "a pipeline missing in KFP makes the Run wait and look again later",
        run(),
        pipelines={},
        kube=["patch_status"],
        status={"synchronizationState": "Creating"},
        reason="PipelineNotFound",
        events=["PipelineNotFound"],
        result=Result(requeue_after=RECHECK),
    ),
    SubmitCase(
        "an invalid filter refuses the Run for good",
        run(spec={**SEED_SPEC, "artifacts": [{"name": "m", "path": "Pusher:pushed_model[pushed ==]"}]}),
        kube=["patch_status"],
        status={"synchronizationState": "Failed"},
        reason="InvalidArtifactFilter",
        events=["InvalidArtifactFilter"],
        result=TerminalError,
    ),
    SubmitCase(
        "a create KFP refuses (4xx) fails the Run for good",
        run(),
        create_error=KfpError("create_run", 400, "HTTP 400: bad parameter"),
        kube=["add_finalizer", "patch_status"],
        kfp=["create_run"],
        status={"synchronizationState": "Failed"},
        events=["SubmissionFailed"],
        result=TerminalError,
    ),
    SubmitCase(
        "a create without an answer is retried by the queue, and the Run says KFP is unavailable",
        run(),
        create_error=KfpError("create_run", None, "connection reset"),
        kube=["add_finalizer", "patch_status"],
        kfp=["create_run"],
        status={"synchronizationState": "Creating"},
        events=["KfpUnavailable"],
        result=KfpError,
    ),
    SubmitCase(
        "a retry failing the same way writes and says nothing again",
        run(
            status={
                "synchronizationState": "Creating",
                "conditions": [
                    {
                        "type": "Synchronized",
                        "status": "Unknown",
                        "reason": "KfpUnavailable",
                        "message": "KFP create_run: connection broken; retrying",
                    }
                ],
            },
            finalizers=[FINALIZER],
        ),
        # (its details differ from the last failure's, as a timeout's say how long it waited)
        create_error=KfpError(
            "create_run", None, "ProtocolError: connection reset after 2 s", failure="connection broken"
        ),
        kfp=["list_runs", "create_run"],
        result=KfpError,
    ),
    SubmitCase(
        "an error answer that is not a refusal of the run is reported as such",
        run(),
        create_error=KfpError("create_run", 401, "Unauthenticated"),
        kube=["add_finalizer", "patch_status"],
        kfp=["create_run"],
        status={"synchronizationState": "Creating"},
        events=["KfpRequestFailed"],
        result=KfpError,
    ),
    SubmitCase(
        "a Run refused for this generation is left alone",
        run(status={"synchronizationState": "Failed", "observedGeneration": 1}),
        result=Result(),
    ),
]


@pytest.mark.parametrize("case", SUBMIT_CASES, ids=lambda c: c.name)
def test_submission(case: SubmitCase) -> None:
    f = Fixture()
    f.add_runs(case.run)
    f.add_run_configurations(*case.rcs)
    if case.pipelines is not None:
        f.catalog.pipelines = case.pipelines
    if case.marked_run:
        f.kfp.add_run("RUNNING", run_id="marked", description=f"created by kfp-operator. {marker(UID)}")
    if case.create_error is not None:
        f.kfp.create_errors.append(case.create_error)

    if isinstance(case.result, Result):
        assert reconciler(f).reconcile(KEY) == case.result
    else:
        with pytest.raises(case.result):
            reconciler(f).reconcile(KEY)

    assert f.kube.verbs() == case.kube
    assert f.kfp.verbs() == case.kfp
    patches = f.kube.status_patches()
    if case.status is not None:
        assert case.status.items() <= patches[-1]["status"].items()
    else:
        assert patches == []
    if case.reason is not None:
        resolved = next(c for c in patches[-1]["status"]["conditions"] if c["type"] == "DependenciesResolved")
        assert (resolved["status"], resolved["reason"]) == ("False", case.reason)
    assert f.recorder.reasons() == case.events


def test_the_create_request_names_the_resolved_version_experiment_and_parameters() -> None:
    f = Fixture()
    f.add_runs(run())
    f.add_run_configurations(with_examples())

    reconciler(f).reconcile(KEY)

    (create,) = [r for r in f.kfp.requests if r.verb == "create_run"]
    assert create.body["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-1"}
    assert create.body["experiment_id"] == "e-1"
    assert create.body["runtime_config"] == {"parameters": {"TRAINING_RUNS": "100", "EXAMPLES": "gs://ex"}}
    assert marker(UID) in create.body["description"]
    assert f.counter(f.metrics.submissions, "created") == 1


def test_an_adopted_run_records_what_it_was_submitted_with_not_what_resolves_now() -> None:
    f = Fixture()
    f.add_runs(run(spec={**SEED_SPEC, "pipeline": "penguin-pipeline"}, finalizers=[FINALIZER]))
    f.add_run_configurations(with_examples())  # its artifact is gs://ex now
    f.catalog.versions["p-1"] = [
        PipelineVersion("p-1", "v-1", "v1-abcdef"),
        PipelineVersion("p-1", "v-2", "v2"),
    ]
    f.kfp.add_run(
        "RUNNING",
        run_id="marked",
        description=f"kfp-operator. {marker(UID)}",
        experiment_id="e-1",
        pipeline_version_reference={"pipeline_id": "p-1", "pipeline_version_id": "v-1"},
        runtime_config={"parameters": {"TRAINING_RUNS": 100, "EXAMPLES": "gs://old-examples"}},
    )

    reconciler(f).reconcile(KEY)

    (patch,) = f.kube.status_patches()
    assert patch["status"]["observedPipelineVersion"] == "v1-abcdef"  # not v2, the latest now
    assert patch["status"]["dependencies"] == {
        "runConfigurations": {RC: {"artifacts": [{"name": "examples", "location": "gs://old-examples"}]}}
    }
    assert patch["status"]["version"] == run_version(
        RunSpec.from_dict({**SEED_SPEC, "pipeline": "penguin-pipeline"}), "v1-abcdef"
    )
    (submitted,) = f.recorder.events
    assert "adopted KFP run marked" in submitted.message and "penguin-experiment" in submitted.message
    assert f.counter(f.metrics.submissions, "adopted") == 1


def test_waiting_for_the_same_thing_again_records_no_second_event() -> None:
    f = Fixture()
    f.add_runs(run())
    reconciler(f).reconcile(KEY)
    waited = f.kube.status_patches()[-1]["status"]
    f.add_runs(run(status=waited))

    reconciler(f).reconcile(KEY)

    assert f.recorder.reasons() == ["RunConfigurationNotFound"]
    assert f.kube.verbs() == ["patch_status"]  # the second pass found nothing to change


# ---- after submission -------------------------------------------------------------------------


def test_a_run_not_yet_due_for_its_safety_check_waits_without_asking_kfp() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    r = reconciler(f)
    r._tracker.record(KfpRunObservation("kfp-7", "RUNNING", NOW, None))

    assert r.reconcile(KEY) == Result(requeue_after=SAFETY_CHECK)
    assert f.kfp.verbs() == []
    assert f.kube.verbs() == []


def test_the_safety_check_reads_the_kfp_run_and_records_progress() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    f.kfp.add_run("RUNNING", run_id="kfp-7")
    r = reconciler(f)
    r._tracker.record(KfpRunObservation("kfp-7", "RUNNING", NOW, None))
    f.clock.step(SAFETY_CHECK)

    assert r.reconcile(KEY) == Result(requeue_after=SAFETY_CHECK)

    assert f.kfp.verbs() == ["get_run"]
    (patch,) = f.kube.status_patches()
    completed = next(c for c in patch["status"]["conditions"] if c["type"] == "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "Running")


@dataclass
class CompletionCase:
    name: str
    state: str
    completion_state: str
    artifacts: list[dict[str, str]] | None
    events: list[str]


COMPLETION_CASES = [
    CompletionCase(
        "a success records the pushed artifact and not the other",
        "SUCCEEDED",
        "Succeeded",
        [{"name": "serving-model", "location": "gs://pushed"}],
        ["Succeeded"],
    ),
    CompletionCase("a failure records no artifacts", "FAILED", "Failed", None, ["Failed"]),
    CompletionCase("a canceled run is a failure", "CANCELED", "Failed", None, ["Failed"]),
]


@pytest.mark.parametrize("case", COMPLETION_CASES, ids=lambda c: c.name)
def test_completion_from_what_the_poll_observed(case: CompletionCase) -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    f.metadata.add_output("kfp-7", "Pusher", "pushed_model", "gs://pushed", pushed=1)
    r = reconciler(f)
    r._tracker.record(KfpRunObservation("kfp-7", case.state, NOW - timedelta(hours=1), NOW))

    assert r.reconcile(KEY) == Result()

    assert f.kfp.verbs() == []  # the poll already said how it ended
    (patch,) = f.kube.status_patches()
    assert patch["status"]["completionState"] == case.completion_state
    assert patch["status"].get("artifacts") == case.artifacts
    assert f.recorder.reasons() == case.events
    assert f.metadata.calls == (
        ["GetExecutions", "GetEventsByExecutionIDs", "GetArtifactsByID"] if case.state == "SUCCEEDED" else []
    )


def test_runs_found_succeeded_together_read_their_records_once_for_all() -> None:
    f = Fixture()
    f.runs.add_indexer(TRACKED_INDEX, tracked_run_index)
    mate = ObjectKey("ns", "penguin-run-y")
    f.add_runs(
        run(status=SUBMITTED, finalizers=[FINALIZER]),
        run(
            name=mate.name,
            uid="uid-y",
            status={**SUBMITTED, "providerId": "kfp:kfp-8"},
            finalizers=[FINALIZER],
        ),
    )
    f.metadata.add_output("kfp-7", "Pusher", "pushed_model", "gs://pushed-7", pushed=1)
    f.metadata.add_output("kfp-8", "Pusher", "pushed_model", "gs://pushed-8", pushed=1)
    read_ahead = MetadataReadAhead(f.metadata, f.runs, f.clock)
    r = reconciler(f, read_ahead=read_ahead)
    observations = [
        KfpRunObservation(i, "SUCCEEDED", NOW - timedelta(hours=1), NOW) for i in ("kfp-7", "kfp-8")
    ]
    read_ahead.expect(observations)  # as the bulk poll hands them over
    for observation in observations:
        r._tracker.record(observation)

    assert r.reconcile(KEY) == Result()
    assert r.reconcile(mate) == Result()

    assert f.metadata.calls == [
        "GetExecutions",
        "GetExecutions",
        "GetEventsByExecutionIDs",
        "GetArtifactsByID",
    ]
    first, second = f.kube.status_patches()
    assert first["status"]["artifacts"] == [{"name": "serving-model", "location": "gs://pushed-7"}]
    assert second["status"]["artifacts"] == [{"name": "serving-model", "location": "gs://pushed-8"}]


def test_an_artifact_that_matches_nothing_is_reported_and_the_run_still_completes() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    f.metadata.add_output("kfp-7", "Pusher", "pushed_model", "gs://not-pushed", pushed=0)
    r = reconciler(f)
    r._tracker.record(KfpRunObservation("kfp-7", "SUCCEEDED", NOW, NOW))

    r.reconcile(KEY)

    assert f.kube.status_patches()[0]["status"]["completionState"] == "Succeeded"
    assert f.recorder.reasons() == ["ArtifactNotFound", "Succeeded"]


def test_a_completion_waits_for_ml_metadata_and_says_so_once() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    f.metadata.add_output("kfp-7", "Pusher", "pushed_model", "gs://pushed", pushed=1)
    f.metadata.errors += [
        MetadataUnavailable("GetExecutions", "UNAVAILABLE", f"failed to connect, attempt {n}") for n in (1, 2)
    ]
    r = reconciler(f)
    r._tracker.record(KfpRunObservation("kfp-7", "SUCCEEDED", NOW - timedelta(hours=1), NOW))

    with pytest.raises(MetadataUnavailable):  # the work queue retries it with backoff
        r.reconcile(KEY)
    status = written(run(status=SUBMITTED), f.kube.status_patches())
    assert "completionState" not in status
    completed = condition(status, "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "MetadataUnavailable")
    assert "succeeded" in completed["message"] and "GetExecutions: UNAVAILABLE" in completed["message"]
    assert f.recorder.reasons() == ["MetadataUnavailable"]

    # Another failure of the same kind (its details differ): nothing new is written or said.
    f.add_runs(run(status=status, finalizers=[FINALIZER], resourceVersion="8"))
    fails_quietly_again(f, lambda: r.reconcile(KEY), MetadataUnavailable)

    assert r.reconcile(KEY) == Result()  # ML Metadata is back
    assert f.kube.status_patches()[-1]["status"]["completionState"] == "Succeeded"


def _completing(f: Fixture, sinks: list[RecordingSink]) -> RunReconciler:
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    f.metadata.add_output("kfp-7", "Pusher", "pushed_model", "gs://pushed", pushed=1)
    r = reconciler(f, delivering_to=sinks)
    r._tracker.record(KfpRunObservation("kfp-7", "SUCCEEDED", NOW - timedelta(hours=1), NOW))
    return r


def test_the_completion_event_goes_out_with_the_completion_in_one_write() -> None:
    f = Fixture()
    sinks = [RecordingSink("nats"), RecordingSink("hooks")]

    with capture_logs() as logs:
        assert _completing(f, sinks).reconcile(KEY) == Result()

    # One log line says both: the completion and where its event went.
    (line,) = logs
    assert (line["event"], line["state"], line["kfp_run"]) == ("completed", "SUCCEEDED", "kfp-7")
    assert (line["event_id"], line["event_delivered_to"]) == (event_id(UID, "kfp-7"), ["nats", "hooks"])

    (patch,) = f.kube.status_patches()
    assert patch["status"]["completionState"] == "Succeeded"
    assert patch["status"]["completionEvent"] == {
        "id": event_id(UID, "kfp-7"),
        "deliveredTo": ["nats", "hooks"],
        "deliveredAt": "2026-01-02T03:04:05Z",
    }
    for sink in sinks:
        (event,) = sink.published
        assert event["id"] == event_id(UID, "kfp-7")
        assert event["data"]["status"] == "succeeded"
        assert event["data"]["artifacts"] == [{"name": "serving-model", "location": "gs://pushed"}]
        assert event["time"] == patch["status"]["finishedAt"], "the event says what the status records"
    assert f.counter(f.metrics.event_deliveries, "hooks", "delivered") == 1


def test_a_sink_that_fails_leaves_its_delivery_to_the_completion_event_controller_for_a_while() -> None:
    f = Fixture()
    sinks = [RecordingSink("nats"), RecordingSink("hooks", failing=True)]
    r = _completing(f, sinks)

    with capture_logs() as logs:
        r.reconcile(KEY)

    completed = next(line for line in logs if line["event"] == "completed")
    assert "event_delivered_to" not in completed, "an event not every sink took is not logged as delivered"
    (patch,) = f.kube.status_patches()
    assert patch["status"]["completionState"] == "Succeeded", "the completion is recorded all the same"
    assert patch["status"]["completionEvent"] == {"id": event_id(UID, "kfp-7"), "deliveredTo": ["nats"]}
    assert f.recorder.reasons() == ["Succeeded"], "the completion-event controller warns when it retries"
    assert f.counter(f.metrics.event_deliveries, "hooks", "failed") == 1

    # Other Runs completing within the hold do not ask the sinks at all.
    sinks[1].failing = False
    f.kube.requests.clear()
    f.add_runs(run(name="second", uid="uid-2", status=SUBMITTED, finalizers=[FINALIZER]))
    f.clock.step(SINK_FAILURE_HOLD - 1)
    r.reconcile(ObjectKey("ns", "second"))
    assert "completionEvent" not in f.kube.status_patches()[0]["status"]
    assert len(sinks[0].published) == 1 and sinks[1].published == []

    f.kube.requests.clear()
    f.add_runs(run(name="third", uid="uid-3", status=SUBMITTED, finalizers=[FINALIZER]))
    f.clock.step(1)
    r.reconcile(ObjectKey("ns", "third"))
    assert f.kube.status_patches()[0]["status"]["completionEvent"]["deliveredTo"] == ["nats", "hooks"]


def test_without_sinks_a_completion_records_no_event() -> None:
    f = Fixture()

    _completing(f, []).reconcile(KEY)

    (patch,) = f.kube.status_patches()
    assert "completionEvent" not in patch["status"]


def test_a_kfp_run_that_vanished_fails_the_run() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, finalizers=[FINALIZER]))
    r = reconciler(f)
    f.clock.step(SAFETY_CHECK)

    assert r.reconcile(KEY) == Result(requeue_after=SAFETY_CHECK)  # first sight starts its clock
    f.clock.step(SAFETY_CHECK)
    assert r.reconcile(KEY) == Result()

    assert f.kfp.verbs() == ["get_run"]
    assert f.kube.status_patches()[-1]["status"]["completionState"] == "Failed"
    assert f.recorder.reasons() == ["RunVanished"]


# ---- deletion ---------------------------------------------------------------------------------

DELETING = {"deletionTimestamp": "2026-01-02T03:00:00Z", "finalizers": [FINALIZER]}
HELD = 10.0  # a held Run looks again this often; deletion started 4 min before NOW, 6 min are left
COMPLETED = {**SUBMITTED, "completionState": "Succeeded", "finishedAt": "2026-01-02T02:59:00Z"}
DELIVERED = {"completionEvent": {"id": "e", "deliveredTo": ["nats"], "deliveredAt": "2026-01-02T03:00:01Z"}}


@dataclass
class DeletionCase:
    name: str
    run: dict[str, Any]
    kfp_state: str | None
    terminate_error: KfpError | None = None
    sinks: bool = True
    kfp: list[str] = field(default_factory=list)
    kube: list[str] = field(default_factory=list)
    sync_state: str | None = None  # synchronizationState written, if any
    events: list[str] = field(default_factory=list)
    result: Result | type[Exception] = field(default_factory=lambda: Result(requeue_after=HELD))


DELETION_CASES = [
    DeletionCase(
        "an active KFP run is terminated, and the Run held as Deleting until it stops",
        run(status=SUBMITTED, **DELETING),
        "RUNNING",
        kfp=["get_run", "terminate_run"],
        kube=["patch_status"],
        sync_state="Deleting",
        events=["Terminated"],
    ),
    DeletionCase(
        "a KFP run that is already stopping is waited for, not terminated again",
        run(status=SUBMITTED, **DELETING),
        "CANCELING",
        kfp=["get_run"],
        kube=["patch_status"],
        sync_state="Deleting",
    ),
    DeletionCase(
        "a KFP run that finished is recorded as the Run's completion first",
        run(status=SUBMITTED, **DELETING),
        "FAILED",
        kfp=["get_run"],
        kube=["patch_status"],
        events=["Failed"],
    ),
    DeletionCase(
        "a completed Run is held until its event is delivered",
        run(status=COMPLETED, **DELETING),
        None,
        kube=["patch_status"],
        sync_state="Deleting",
    ),
    DeletionCase(
        "a completed Run whose event is delivered is released without asking KFP",
        run(status={**COMPLETED, **DELIVERED}, **DELETING),
        None,
        kube=["remove_finalizer"],
        result=Result(),
    ),
    DeletionCase(
        "without sinks, a completed Run has no event to wait for",
        run(status=COMPLETED, **DELETING),
        None,
        sinks=False,
        kube=["remove_finalizer"],
        result=Result(),
    ),
    DeletionCase(
        "a Run deleted before its KFP run was recorded finds it by its marker and records it",
        run(**DELETING),
        "PENDING",
        kfp=["list_runs"],
        kube=["patch_status"],
        sync_state="Succeeded",
        events=["Submitted"],
    ),
    DeletionCase(
        "a Run whose create never got through is released",
        run(**DELETING),
        None,
        kfp=["list_runs"],
        kube=["remove_finalizer"],
        result=Result(),
    ),
    DeletionCase(
        "a terminate that fails before the deletion timeout is retried, holding the finalizer",
        run(status=SUBMITTED, **DELETING),
        "RUNNING",
        terminate_error=KfpError("terminate_run", 503, "unavailable"),
        kfp=["get_run", "terminate_run"],
        result=KfpError,
    ),
    DeletionCase(
        "a terminate that KFP answers 400 (finished meanwhile) waits for the run to be seen finished",
        run(status=SUBMITTED, **DELETING),
        "RUNNING",
        terminate_error=KfpError("terminate_run", 400, "not active"),
        kfp=["get_run", "terminate_run"],
        kube=["patch_status"],
        sync_state="Deleting",
    ),
    DeletionCase(
        "a Run without the finalizer is not ours to hold",
        run(status=SUBMITTED, deletionTimestamp="2026-01-02T03:00:00Z"),
        "RUNNING",
        result=Result(),
    ),
]


@pytest.mark.parametrize("case", DELETION_CASES, ids=lambda c: c.name)
def test_deletion(case: DeletionCase) -> None:
    f = Fixture()
    f.add_runs(case.run)
    if case.kfp_state is not None:
        f.kfp.add_run(case.kfp_state, run_id="kfp-7", description=f"kfp-operator. {marker(UID)}")
    if case.terminate_error is not None:
        f.kfp.terminate_errors.append(case.terminate_error)

    if isinstance(case.result, Result):
        assert reconciler(f, sinks=case.sinks).reconcile(KEY) == case.result
    else:
        with pytest.raises(case.result):
            reconciler(f, sinks=case.sinks).reconcile(KEY)

    assert f.kfp.verbs() == case.kfp
    assert f.kube.verbs() == case.kube
    if case.sync_state is not None:
        assert f.kube.status_patches()[-1]["status"]["synchronizationState"] == case.sync_state
    assert f.recorder.reasons() == case.events


@pytest.mark.parametrize(
    ("status", "kfp_state", "abandoned"),
    [
        (SUBMITTED, "RUNNING", "KFP run kfp-7 to stop"),
        (COMPLETED, None, "completion event not delivered yet"),
    ],
)
def test_after_the_deletion_timeout_the_run_is_released_saying_what_was_abandoned(
    status: dict[str, Any], kfp_state: str | None, abandoned: str
) -> None:
    f = Fixture()
    f.add_runs(run(status=status, **DELETING))
    if kfp_state:
        f.kfp.add_run(kfp_state, run_id="kfp-7")

    assert reconciler(f, deletion_timeout=60, sinks=True).reconcile(KEY) == Result()

    assert f.kube.verbs() == ["remove_finalizer"]
    (timed_out,) = [e for e in f.recorder.events if e.reason == "DeletionTimedOut"]
    assert timed_out.type == "Warning" and abandoned in timed_out.message


def test_after_the_deletion_timeout_an_unreachable_kfp_no_longer_holds_the_run() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, **DELETING))
    f.kfp.get_errors.append(KfpError("get_run", None, "connection refused"))

    assert reconciler(f, deletion_timeout=60).reconcile(KEY) == Result()

    assert f.kube.verbs() == ["remove_finalizer"]
    assert "could not be reached" in f.recorder.events[-1].message


def test_after_the_deletion_timeout_an_unreadable_ml_metadata_no_longer_holds_the_run() -> None:
    f = Fixture()
    f.add_runs(run(status=SUBMITTED, **DELETING))
    f.kfp.add_run("SUCCEEDED", run_id="kfp-7")
    f.metadata.errors.append(MetadataUnavailable("GetExecutions", "UNAVAILABLE", "connection refused"))

    assert reconciler(f, deletion_timeout=60).reconcile(KEY) == Result()

    assert f.kube.verbs()[-1] == "remove_finalizer"
    (timed_out,) = [e for e in f.recorder.events if e.reason == "DeletionTimedOut"]
    assert "ML Metadata could not be read" in timed_out.message


def test_a_lost_create_is_adopted_once_while_the_cache_catches_up_version_by_version() -> None:
    # The create's answer is lost after KFP made the run. The failed reconcile wrote twice: the
    # finalizer, then the condition saying KFP did not answer. The cache then shows each of the
    # two versions in turn; only the last may look for the run and adopt it.
    f = Fixture()
    f.add_runs(run())
    f.add_run_configurations(with_examples())
    f.kfp.create_errors.append(KfpError("create_run", None, "connection reset by peer"))
    r = reconciler(f)
    with pytest.raises(KfpError):
        r.reconcile(KEY)
    (create,) = [q for q in f.kfp.requests if q.verb == "create_run"]
    f.kfp.add_run("PENDING", description=create.body["description"])  # KFP had made it
    (failing,) = f.kube.status_patches()
    with_finalizer = run(finalizers=[FINALIZER], resourceVersion="100")  # as the patch answered
    with_condition = run(finalizers=[FINALIZER], resourceVersion="101", status=failing["status"])

    for version in (with_finalizer, with_condition):
        f.add_runs(version)
        r.reconcile(KEY)

    assert f.kfp.verbs() == ["create_run", "list_runs"]
    assert f.recorder.reasons() == ["KfpUnavailable", "Submitted"]
    assert f.counter(f.metrics.submissions, "adopted") == 1


def test_a_cache_that_has_not_caught_up_with_our_own_write_is_not_acted_on_again() -> None:
    f = Fixture()
    f.add_runs(run())
    f.add_run_configurations(with_examples())
    r = reconciler(f)
    r.reconcile(KEY)
    requests = len(f.kfp.requests)

    assert r.reconcile(KEY) == Result()  # the cache still holds the version we acted on

    assert len(f.kfp.requests) == requests
    assert f.recorder.reasons() == ["Submitted"]
