"""Runs and RunConfigurations that name Pipeline and Experiment resources: the indexes and watch
mappings that bring them back, and what their reconcilers do with a Pipeline's versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.store import Store
from reconcilers.indexes import (
    EXPERIMENT_INDEX,
    OWNER_INDEX,
    PIPELINE_INDEX,
    owner_index,
    rc_experiment_index,
    rc_pipeline_index,
    run_experiment_index,
    run_pipeline_index,
    unsubmitted_runs_by,
)
from reconcilers.run.reconciler import RunReconciler, RunSettings
from reconcilers.run.resolve import PipelineVersion
from reconcilers.run.tracking import KfpRunTracker
from reconcilers.run_metrics import RunConfigurationMetrics
from reconcilers.runconfiguration.reconciler import RunConfigurationReconciler, RunConfigurationSettings
from tests.reconcilers.resource_fakes import ResourceFixture
from tests.support.objects import SEED_SPEC, run
from tests.support.resources import compiled, experiment, pipeline

SPEC = {"pipeline": "penguin", "experimentName": "penguin-experiment"}


def ready(version: str, state: str = "Succeeded") -> dict[str, Any]:
    status = {
        "synchronizationState": state,
        "version": version,
        "providerId": "kfp:p-9",
        "observedGeneration": 1,
    }
    return pipeline(compiled(), status=status)


def test_runs_and_run_configurations_are_indexed_by_the_names_they_use() -> None:
    assert run_pipeline_index(run(spec={**SEED_SPEC, "pipeline": "penguin:v1"})) == ["ns/penguin"]
    assert run_experiment_index(run()) == ["ns/penguin-experiment"]
    assert run_experiment_index(run(spec={"pipeline": "p"})) == []
    rc = {"metadata": {"name": "rc", "namespace": "ns"}, "spec": {"run": SPEC}}
    assert rc_pipeline_index(rc) == ["ns/penguin"]
    assert rc_experiment_index(rc) == ["ns/penguin-experiment"]


def test_a_pipeline_change_reaches_only_the_runs_not_submitted_yet() -> None:
    runs = Store({PIPELINE_INDEX: run_pipeline_index, EXPERIMENT_INDEX: run_experiment_index})
    runs.upsert(run(name="waiting", spec=SPEC))
    runs.upsert(run(name="submitted", spec=SPEC, status={"providerId": "kfp:r-1"}))
    runs.upsert(run(name="other", spec={"pipeline": "other"}))

    assert unsubmitted_runs_by(runs, PIPELINE_INDEX)(pipeline(compiled())) == [ObjectKey("ns", "waiting")]
    assert unsubmitted_runs_by(runs, EXPERIMENT_INDEX)(experiment()) == [ObjectKey("ns", "waiting")]


def rc_reconciler(f: ResourceFixture) -> RunConfigurationReconciler:
    f.run_configurations.add_indexer(PIPELINE_INDEX, rc_pipeline_index)
    f.runs.add_indexer(OWNER_INDEX, owner_index)
    return RunConfigurationReconciler(
        run_configurations=f.run_configurations,
        runs=f.runs,
        kube=f.kube,
        catalog=f.catalog,
        recorder=f.recorder,
        metrics=RunConfigurationMetrics(CollectorRegistry()),
        clock=f.clock,
        settings=RunConfigurationSettings(
            provider="kfp", default_experiment="Default", recheck_interval=30.0
        ),
        pipelines=f.pipelines,
        experiments=f.experiments,
    )


def on_change_rc(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "kind": "RunConfiguration",
        "metadata": {
            "name": "train",
            "namespace": "ns",
            "uid": "uid-train",
            "generation": 1,
            "resourceVersion": "5",
            "creationTimestamp": "2026-01-02T02:00:00Z",
        },
        "spec": {"run": {"pipeline": "penguin"}, "triggers": {"onChange": ["pipeline"]}},
        "status": status or {},
    }


def fixture(pipeline_obj: dict[str, Any], rc: dict[str, Any]) -> ResourceFixture:
    f = ResourceFixture()
    f.catalog.versions["p-9"] = [
        PipelineVersion("p-9", "v-1", "aaaaaa"),
        PipelineVersion("p-9", "v-2", "bbbbbb"),
    ]
    f.add_pipelines(pipeline_obj)
    f.add_run_configurations(rc)
    return f


def created_runs(f: ResourceFixture) -> list[dict[str, Any]]:
    return [r.body for r in f.kube.requests if r.verb == "create"]


def test_on_change_pipeline_fires_once_for_a_new_pipeline_version() -> None:
    f = fixture(
        ready("bbbbbb"),
        on_change_rc({"observedPipelineVersion": "aaaaaa", "triggeredPipelineVersion": "aaaaaa"}),
    )

    rc_reconciler(f).reconcile(ObjectKey("ns", "train"))

    [created] = created_runs(f)
    assert created["spec"]["pipeline"] == "penguin:bbbbbb"
    status = f.kube.status_patches()[-1]["status"]
    assert status["triggeredPipelineVersion"] == "bbbbbb"


def test_while_its_pipeline_updates_a_run_configuration_keeps_its_version_and_creates_nothing() -> None:
    f = fixture(
        ready("cccccc", state="Updating"),
        on_change_rc({"observedPipelineVersion": "aaaaaa", "triggeredPipelineVersion": "aaaaaa"}),
    )

    rc_reconciler(f).reconcile(ObjectKey("ns", "train"))

    assert created_runs(f) == []
    patches = f.kube.status_patches()
    assert not patches or patches[-1]["status"].get("synchronizationState", "Succeeded") == "Succeeded"


def run_reconciler(f: ResourceFixture) -> RunReconciler:
    tracker = KfpRunTracker(
        f.kfp,
        f.runs,
        lambda key: None,
        runs_synced=lambda: True,
        clock=f.clock,
        poll_interval=10.0,
        safety_check_interval=600.0,
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
            dependency_recheck_interval=30.0,
            deletion_timeout=timedelta(minutes=10),
        ),
        pipelines=f.pipelines,
        experiments=f.experiments,
    )


def test_a_run_waits_for_its_pipeline_without_asking_kfp_and_without_a_timer() -> None:
    f = ResourceFixture()
    f.add_pipelines(ready("bbbbbb", state="Updating"))
    f.add_runs(run(spec={"pipeline": "penguin"}))

    result = run_reconciler(f).reconcile(ObjectKey("ns", "penguin-run-x"))

    assert result == Result()  # the Pipeline's watch brings it back
    assert f.kfp.requests == []
    status = f.kube.status_patches()[-1]["status"]
    [waiting] = [c for c in status["conditions"] if c["type"] == "DependenciesResolved"]
    assert waiting["reason"] == "PipelineNotReady"
    assert f.recorder.reasons() == ["PipelineNotReady"]


def test_a_run_submits_the_pipeline_resources_version_in_its_experiment() -> None:
    f = ResourceFixture()
    f.catalog.versions["p-9"] = [PipelineVersion("p-9", "v-2", "bbbbbb")]
    f.add_pipelines(ready("bbbbbb"))
    f.add_experiments(experiment(status={"synchronizationState": "Succeeded", "providerId": "kfp:e-9"}))
    f.add_runs(run(spec=SPEC))

    run_reconciler(f).reconcile(ObjectKey("ns", "penguin-run-x"))

    [create] = [r.body for r in f.kfp.requests if r.verb == "create_run"]
    assert create["pipeline_version_reference"] == {"pipeline_id": "p-9", "pipeline_version_id": "v-2"}
    assert create["experiment_id"] == "e-9"
    assert f.kube.status_patches()[-1]["status"]["observedPipelineVersion"] == "bbbbbb"
