"""The RunConfiguration reconciler, one reconcile at a time: cached objects in; Runs created or
deleted, status written, Events recorded and the requeue out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from reconcilers.api import API_VERSION, RUN_CONFIGURATION_LABEL, RUNS
from reconcilers.api.runconfiguration import RunConfigurationView
from reconcilers.clients import KfpError
from reconcilers.indexes import OWNER_INDEX, owner_index
from reconcilers.run_metrics import RunConfigurationMetrics
from reconcilers.runconfiguration.reconciler import RunConfigurationReconciler, RunConfigurationSettings
from reconcilers.runconfiguration.triggers import (
    CAUSES_ANNOTATION,
    TRIGGER_TYPE_LABEL,
    Cause,
    build_run,
    schedule_cause,
)
from tests.reconcilers.fakes import NOW, FakeCatalog, Fixture
from tests.reconcilers.resource_fakes import condition, fails_quietly_again, waiting_on_kfp, written
from tests.support.objects import run

KEY = ObjectKey("ns", "train")
RECHECK = 30.0
RUN_SPEC = {"pipeline": "penguin-pipeline", "experimentName": "penguin-experiment"}
CREATED = "2026-01-02T02:00:00Z"


def rc(
    name: str = "train",
    *,
    triggers: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    run_spec: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "RunConfiguration",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "5",
            "creationTimestamp": CREATED,
        },
        "spec": {"run": run_spec or RUN_SPEC, "triggers": triggers or {}, **spec},
        "status": status or {},
    }


def reconciler(f: Fixture, metrics: RunConfigurationMetrics) -> RunConfigurationReconciler:
    return RunConfigurationReconciler(
        run_configurations=f.run_configurations,
        runs=f.runs,
        kube=f.kube,
        catalog=f.catalog,
        recorder=f.recorder,
        metrics=metrics,
        clock=f.clock,
        settings=RunConfigurationSettings(
            provider="kfp", default_experiment="Default", recheck_interval=RECHECK, sinks_configured=True
        ),
    )


def owned(obj: dict[str, Any]) -> dict[str, Any]:
    """A Run created for a cause, as the API server returns it."""
    return run(
        name=obj["metadata"]["name"],
        labels=obj["metadata"]["labels"],
        annotations=obj["metadata"]["annotations"],
        ownerReferences=obj["metadata"]["ownerReferences"],
        spec=obj["spec"],
    )


def scheduled(tick: str, *, completed: bool = False) -> dict[str, Any]:
    from datetime import datetime

    obj = owned(
        build_run(
            RunConfigurationView(rc()),
            [schedule_cause(datetime.fromisoformat(tick.replace("Z", "+00:00")))],
            "v1-abcdef",
        )
    )
    if completed:
        obj["status"] = {"completionState": "Succeeded", "finishedAt": tick}
    return obj


@dataclass
class Case:
    name: str
    rcs: list[dict[str, Any]]
    runs: list[dict[str, Any]] = field(default_factory=list)
    exists_on_server: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # trigger types of the Runs created
    deleted: list[str] = field(default_factory=list)
    state: str | None = None
    reason: str | None = None
    events: list[str] = field(default_factory=list)
    result: Result = field(default_factory=Result)


PIPELINE_CAUSE = [Cause("onChangePipeline", "penguin-pipeline", "v1-abcdef")]

CASES = [
    Case(
        "a new version of the pipeline creates one Run, pinned to it",
        [rc(triggers={"onChange": ["pipeline"]})],
        created=["onChangePipeline"],
        state="Succeeded",
        events=["RunCreated"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a version already triggered creates nothing",
        [rc(triggers={"onChange": ["pipeline"]}, status={"triggeredPipelineVersion": "v1-abcdef"})],
        state="Succeeded",
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a Run created before a crash (in the cache) answers the cause: nothing more is created",
        [rc(triggers={"onChange": ["pipeline"]})],
        runs=[owned(build_run(RunConfigurationView(rc()), PIPELINE_CAUSE, "v1-abcdef"))],
        state="Succeeded",
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a Run created before a crash (not yet in the cache) is found by its name",
        [rc(triggers={"onChange": ["pipeline"]})],
        exists_on_server=[build_run(RunConfigurationView(rc()), PIPELINE_CAUSE, "v1-abcdef")],
        state="Succeeded",
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a schedule tick that passed creates its Run and the next tick is waited for",
        [rc(triggers={"schedules": ["*/5 * * * *"]}, status={"lastScheduleTime": "2026-01-02T02:55:00Z"})],
        created=["schedule"],
        state="Succeeded",
        events=["RunCreated"],
        result=Result(requeue_after=55.0),  # 03:05:00 - 03:04:05
    ),
    Case(
        "Forbid skips the tick while a scheduled Run is active",
        [
            rc(
                triggers={"schedules": ["*/5 * * * *"]},
                schedulePolicy={"concurrencyPolicy": "Forbid"},
                status={"lastScheduleTime": "2026-01-02T02:55:00Z"},
            )
        ],
        runs=[scheduled("2026-01-02T02:55:00Z")],
        state="Succeeded",
        events=["ScheduleSkipped"],
        result=Result(requeue_after=55.0),
    ),
    Case(
        "Replace deletes the active scheduled Run and creates the tick's",
        [
            rc(
                triggers={"schedules": ["*/5 * * * *"]},
                schedulePolicy={"concurrencyPolicy": "Replace"},
                status={"lastScheduleTime": "2026-01-02T02:55:00Z"},
            )
        ],
        runs=[scheduled("2026-01-02T02:55:00Z")],
        created=["schedule"],
        deleted=[scheduled("2026-01-02T02:55:00Z")["metadata"]["name"]],
        state="Succeeded",
        events=["Deleted", "RunCreated"],
        result=Result(requeue_after=55.0),
    ),
    Case(
        "a missing RunConfiguration a parameter comes from: waiting, nothing created",
        [
            rc(
                triggers={"onChange": ["pipeline"]},
                run_spec={
                    **RUN_SPEC,
                    "runtimeParameters": [
                        {
                            "name": "E",
                            "valueFrom": {"runConfigurationRef": {"name": "gen", "outputArtifact": "x"}},
                        }
                    ],
                },
            )
        ],
        state="Creating",
        reason="RunConfigurationNotFound",
        events=["RunConfigurationNotFound"],
    ),
    Case(
        "a trigger on a RunConfiguration that does not exist: waiting, nothing created",
        [rc(triggers={"runConfigurations": ["gen"], "onChange": ["pipeline"]})],
        state="Creating",
        reason="RunConfigurationNotFound",
        events=["RunConfigurationNotFound"],
    ),
    Case(
        "a pipeline missing in KFP: waiting, looked at again later",
        [rc(triggers={"onChange": ["pipeline"]}, run_spec={**RUN_SPEC, "pipeline": "missing"})],
        state="Creating",
        reason="PipelineNotFound",
        events=["PipelineNotFound"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a cron expression that cannot fire fails the RunConfiguration",
        [rc(triggers={"schedules": ["0 0 31 2 *"]})],
        state="Failed",
        events=["InvalidSchedule"],
    ),
    Case(
        "a trigger cycle fails the RunConfiguration",
        [
            rc(triggers={"runConfigurations": ["other"]}),
            rc("other", triggers={"runConfigurations": ["train"]}),
        ],
        state="Failed",
        events=["TriggerCycle"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reconcile(case: Case) -> None:
    from prometheus_client import CollectorRegistry

    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_run_configurations(*case.rcs)
    f.add_runs(*case.runs)
    for obj in [*case.runs, *case.exists_on_server]:
        f.kube.put(RUNS, obj)
    metrics = RunConfigurationMetrics(CollectorRegistry())

    assert reconciler(f, metrics).reconcile(KEY) == case.result

    creates = [
        r.body
        for r in f.kube.requests
        if r.verb == "create" and (RUNS.plural, ObjectKey("ns", r.body["metadata"]["name"])) in f.kube.objects
    ]
    created = [
        b
        for b in creates
        if all(b["metadata"]["name"] != o["metadata"]["name"] for o in case.exists_on_server)
    ]
    assert [b["metadata"]["labels"][TRIGGER_TYPE_LABEL] for b in created] == case.created
    for body in created:
        assert body["spec"]["pipeline"] == "penguin-pipeline:v1-abcdef"
        assert body["metadata"]["labels"][RUN_CONFIGURATION_LABEL] == "train"
    assert [r.target.rpartition("/")[2] for r in f.kube.requests if r.verb == "delete"] == case.deleted
    patches = f.kube.status_patches()
    if case.state is not None and patches:
        assert (
            patches[-1]["status"].get(
                "synchronizationState", case.rcs[0]["status"].get("synchronizationState")
            )
            == case.state
        )
    if case.reason is not None:
        resolved = next(c for c in patches[-1]["status"]["conditions"] if c["type"] == "DependenciesResolved")
        assert resolved["reason"] == case.reason
    assert f.recorder.reasons() == case.events
    for trigger in case.created:
        assert f.counter(metrics.runs_created, trigger) == 1


@dataclass
class FailingCatalog(FakeCatalog):
    """A KFP that answers every lookup with this error."""

    error: KfpError = field(default_factory=lambda: KfpError("get_pipeline_by_name", None, "refused"))

    def pipeline_id(self, name: str, namespace: str) -> str | None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            KfpError(
                "get_pipeline_by_name", None, "ConnectionRefusedError: [Errno 111]", failure="cannot connect"
            ),
            "KfpUnavailable",
        ),
        # Multi-user KFP without kubeflow-pipelines-edit for the operator in the namespace.
        (KfpError("get_pipeline_by_name", 403, "HTTP 403: not authorized"), "KfpRequestFailed"),
    ],
)
def test_a_kfp_lookup_that_fails_is_said_on_the_run_configuration_and_retried(
    error: KfpError, reason: str
) -> None:
    from prometheus_client import CollectorRegistry

    f = Fixture(catalog=FailingCatalog(error=error))
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_run_configurations(rc(triggers={"onChange": ["pipeline"]}))
    rcs = reconciler(f, RunConfigurationMetrics(CollectorRegistry()))

    with pytest.raises(KfpError):  # the work queue retries it with backoff
        rcs.reconcile(KEY)
    assert [r.verb for r in f.kube.requests if r.verb == "create"] == []  # no Run without a version
    status = written(rc(), f.kube.status_patches())
    assert waiting_on_kfp(status) == ("Creating", "Unknown", reason)
    assert (error.failure or error.message) in condition(status, "Synchronized")["message"]
    assert (condition(status, "Ready")["status"], condition(status, "Ready")["reason"]) == ("False", reason)
    assert f.recorder.reasons() == [reason]

    written_rc = rc(triggers={"onChange": ["pipeline"]}, status=status)
    written_rc["metadata"]["resourceVersion"] = "6"
    f.add_run_configurations(written_rc)
    fails_quietly_again(f, lambda: rcs.reconcile(KEY))


def test_the_status_records_every_cause_as_triggered_after_creating() -> None:
    from prometheus_client import CollectorRegistry

    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_run_configurations(rc(triggers={"onChange": ["pipeline", "runSpec"]}))

    reconciler(f, RunConfigurationMetrics(CollectorRegistry())).reconcile(KEY)

    [create] = [r for r in f.kube.requests if r.verb == "create"]
    assert len(json.loads(create.body["metadata"]["annotations"][CAUSES_ANNOTATION])) == 2  # one Run for both
    [patch] = f.kube.status_patches()
    assert patch["status"]["triggeredPipelineVersion"] == "v1-abcdef"
    assert patch["status"]["triggers"]["runSpec"]["version"]
    assert patch["status"]["observedPipelineVersion"] == "v1-abcdef"
    assert patch["status"]["provider"] == "kfp"


def test_history_beyond_the_limit_goes_oldest_first_once_delivered() -> None:
    from prometheus_client import CollectorRegistry

    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_run_configurations(rc(successfulRunsHistoryLimit=2))
    delivered = {"completionEvent": {"deliveredAt": "2026-01-02T03:00:00Z"}}
    for hour, event in ((0, delivered), (1, {}), (2, delivered), (3, delivered)):
        f.add_runs(
            run(
                name=f"r{hour}",
                uid=f"u{hour}",
                labels={RUN_CONFIGURATION_LABEL: "train"},
                status={"completionState": "Succeeded", "finishedAt": f"2026-01-02T0{hour}:00:00Z", **event},
            )
        )

    reconciler(f, RunConfigurationMetrics(CollectorRegistry())).reconcile(KEY)

    # r3 and r2 are kept; r1 is beyond the limit but its event is not delivered yet.
    assert [r.target for r in f.kube.requests if r.verb == "delete"] == ["runs/ns/r0"]


def test_the_runs_of_a_deleted_run_configuration_are_deleted() -> None:
    from prometheus_client import CollectorRegistry

    f = Fixture()
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    f.add_runs(
        scheduled("2026-01-02T02:55:00Z"), run(name="by-hand", labels={RUN_CONFIGURATION_LABEL: "train"})
    )

    assert reconciler(f, RunConfigurationMetrics(CollectorRegistry())).reconcile(KEY) == Result()

    assert [r.target for r in f.kube.requests if r.verb == "delete"] == [
        f"runs/ns/{scheduled('2026-01-02T02:55:00Z')['metadata']['name']}"
    ]
    assert NOW  # the clock the fixture runs at
