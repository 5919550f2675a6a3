"""Resolution through Pipeline and Experiment resources: their KFP objects are used by id, Runs wait
while they are not ready, and a RunConfiguration keeps its version while its Pipeline updates."""

from __future__ import annotations

from typing import Any

import pytest

from reconcilers.api.run import RunSpec
from reconcilers.run.resolve import PipelineVersion, Resolved, Waiting, resolve
from tests.reconcilers.run.test_resolve import RC, FakeCatalog, rc_with_examples
from tests.support.objects import SEED_SPEC
from tests.support.resources import compiled, experiment, pipeline

SPEC = {**SEED_SPEC, "pipeline": "penguin"}


def catalog() -> FakeCatalog:
    # The Pipeline resource's KFP pipeline is "ns-penguin" (p-9), with two versions; "penguin"
    # (p-1) is another pipeline with that name as it is.
    found = FakeCatalog()
    found.pipelines["penguin"] = "p-1"
    found.versions["p-9"] = [PipelineVersion("p-9", "v-8", "aaaaaa"), PipelineVersion("p-9", "v-9", "bbbbbb")]
    return found


def ready_pipeline(version: str = "bbbbbb", **status: Any) -> dict[str, Any]:
    return pipeline(
        compiled(),
        status={
            "synchronizationState": "Succeeded",
            "version": version,
            "providerId": "kfp:p-9",
            "observedGeneration": 1,
            **status,
        },
    )


def ready_experiment() -> dict[str, Any]:
    return experiment(status={"synchronizationState": "Succeeded", "providerId": "kfp:e-9"})


def do_resolve(spec=SPEC, *, found=None, pipeline_resource=None, experiment_resource=None, previous=None):
    return resolve(
        RunSpec.from_dict(spec),
        namespace="ns",
        run_configurations={RC: rc_with_examples()},
        catalog=found or catalog(),
        default_experiment="Default",
        pipeline_resource=pipeline_resource,
        experiment_resource=experiment_resource,
        previous_version=previous,
    )


def test_without_resources_names_are_looked_up_in_kfp_as_they_are() -> None:
    result = do_resolve()
    assert isinstance(result, Resolved)
    assert result.pipeline_id == "p-1"


def test_a_ready_pipeline_resource_gives_its_kfp_pipeline_and_status_version() -> None:
    found = catalog()
    result = do_resolve(found=found, pipeline_resource=ready_pipeline("aaaaaa"))
    assert isinstance(result, Resolved)
    assert (result.pipeline_id, result.version.version_id, result.version.name) == ("p-9", "v-8", "aaaaaa")
    assert "pipeline" not in found.calls  # no lookup by name


def test_a_pinned_version_is_taken_from_the_resources_pipeline() -> None:
    result = do_resolve({**SPEC, "pipeline": "penguin:aaaaaa"}, pipeline_resource=ready_pipeline())
    assert isinstance(result, Resolved)
    assert result.version.version_id == "v-8"


@pytest.mark.parametrize(
    ("resource", "says"),
    [
        (pipeline(compiled()), "not synchronized yet"),
        (ready_pipeline(synchronizationState="Updating"), "it is Updating"),
        (ready_pipeline(synchronizationState="Failed"), "it is Failed"),
        (ready_pipeline(observedGeneration=0), "being updated"),
        (
            {**ready_pipeline(), "metadata": {**ready_pipeline()["metadata"], "deletionTimestamp": "x"}},
            "deleted",
        ),
    ],
)
def test_a_run_waits_while_its_pipeline_is_not_ready(resource: dict[str, Any], says: str) -> None:
    result = do_resolve(pipeline_resource=resource)
    assert isinstance(result, Waiting)
    assert result.reason == "PipelineNotReady"
    assert not result.waits_on_kfp  # the Pipeline's watch brings the Run back
    assert says in result.message


def test_a_run_configuration_keeps_its_version_while_its_pipeline_updates() -> None:
    result = do_resolve(pipeline_resource=ready_pipeline(synchronizationState="Updating"), previous="aaaaaa")
    assert isinstance(result, Resolved)
    assert result.version.name == "aaaaaa"


def test_a_version_not_in_kfp_waits_on_kfp() -> None:
    result = do_resolve(pipeline_resource=ready_pipeline("cccccc"))
    assert isinstance(result, Waiting) and result.reason == "PipelineVersionNotFound" and result.waits_on_kfp


def test_an_experiment_resource_gives_its_kfp_experiment() -> None:
    found = catalog()
    result = do_resolve(found=found, experiment_resource=ready_experiment())
    assert isinstance(result, Resolved)
    assert result.experiment_id == "e-9"
    assert "experiment" not in found.calls


def test_a_run_waits_while_its_experiment_is_not_ready() -> None:
    result = do_resolve(experiment_resource=experiment())
    assert isinstance(result, Waiting)
    assert (result.reason, result.waits_on_kfp) == ("ExperimentNotReady", False)


def test_the_default_experiment_is_never_a_resource() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "experimentName"}
    result = do_resolve(spec, experiment_resource=experiment())
    assert isinstance(result, Resolved) and result.experiment_id == "e-0"
