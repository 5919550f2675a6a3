"""Resolution before submission: each missing dependency, each invalid input, and the happy path."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reconcilers.api.run import RunSpec
from reconcilers.run.resolve import PipelineVersion, ReferencePolicy, Rejected, Resolved, Waiting, resolve
from tests.support.objects import SEED_SPEC, run_configuration

RC = "penguin-pipeline-example-generator-runconfiguration"
SPEC_TYPES = {
    "root": {
        "inputDefinitions": {
            "parameters": {
                "TRAINING_RUNS": {"parameterType": "NUMBER_INTEGER"},
                "EXAMPLES": {"parameterType": "STRING"},
            }
        }
    }
}


@dataclass
class FakeCatalog:
    pipelines: dict[str, str] = field(default_factory=lambda: {"penguin-pipeline": "p-1"})
    versions: dict[str, list[PipelineVersion]] = field(
        default_factory=lambda: {
            "p-1": [
                PipelineVersion("p-1", "v-old", "v0", SPEC_TYPES),
                PipelineVersion("p-1", "v-1", "v1-abcdef", SPEC_TYPES),
            ]
        }
    )
    experiments: dict[str, str] = field(
        default_factory=lambda: {"penguin-experiment": "e-1", "Default": "e-0"}
    )
    calls: list[str] = field(default_factory=list)

    def pipeline_id(self, name: str, namespace: str) -> str | None:
        self.calls.append("pipeline")
        return self.pipelines.get(name)

    def pipeline_version(self, pipeline_id: str, version_name: str | None) -> PipelineVersion | None:
        self.calls.append("version")
        versions = self.versions.get(pipeline_id, [])
        if version_name is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.name == version_name), None)

    def experiment_id(self, display_name: str, namespace: str) -> str | None:
        self.calls.append("experiment")
        return self.experiments.get(display_name)


def rc_with_examples() -> dict:
    return run_configuration(
        RC,
        succeeded={
            "providerId": "kfp:eg-1",
            "artifacts": [{"name": "examples", "location": "s3://examples/1"}],
        },
    )


def do_resolve(spec=None, rcs=None, catalog=None):
    return resolve(
        RunSpec.from_dict(spec or SEED_SPEC),
        namespace="ns",
        run_configurations=rcs if rcs is not None else {RC: rc_with_examples()},
        catalog=catalog or FakeCatalog(),
        default_experiment="Default",
    )


def test_seed_spec_resolves_with_typed_parameters_and_dependencies() -> None:
    result = do_resolve()

    assert result == Resolved(
        pipeline_id="p-1",
        version=PipelineVersion("p-1", "v-1", "v1-abcdef"),
        experiment_id="e-1",
        experiment_name="penguin-experiment",
        parameters={"TRAINING_RUNS": 100, "EXAMPLES": "s3://examples/1"},
        dependencies={
            RC: {"providerId": "kfp:eg-1", "artifacts": [{"name": "examples", "location": "s3://examples/1"}]}
        },
    )


def test_without_a_version_the_latest_is_used() -> None:
    result = do_resolve(spec={**SEED_SPEC, "pipeline": "penguin-pipeline"})

    assert isinstance(result, Resolved)
    assert result.version.name == "v1-abcdef"


def test_without_an_experiment_the_default_is_used() -> None:
    spec = {k: v for k, v in SEED_SPEC.items() if k != "experimentName"}

    result = do_resolve(spec=spec)

    assert isinstance(result, Resolved)
    assert (result.experiment_id, result.experiment_name) == ("e-0", "Default")


@pytest.mark.parametrize(
    ("rcs", "reason", "message"),
    [
        ({}, "RunConfigurationNotFound", f"parameter EXAMPLES: RunConfiguration {RC} does not exist"),
        (
            {RC: run_configuration(RC)},
            "ArtifactNotAvailable",
            f"parameter EXAMPLES: RunConfiguration {RC} has no succeeded run yet",
        ),
        (
            {
                RC: run_configuration(
                    RC, succeeded={"providerId": "kfp:1", "artifacts": [{"name": "x", "location": "l"}]}
                )
            },
            "ArtifactNotAvailable",
            f"parameter EXAMPLES: RunConfiguration {RC} has no artifact examples in its latest succeeded run",
        ),
    ],
    ids=["missing", "no-succeeded-run", "no-artifact"],
)
def test_a_missing_run_configuration_dependency_waits_without_asking_kfp(rcs, reason, message) -> None:
    catalog = FakeCatalog()

    result = do_resolve(rcs=rcs, catalog=catalog)

    assert isinstance(result, Waiting)
    assert (result.reason, result.message, result.waits_on_kfp) == (reason, message, False)
    assert catalog.calls == []


def test_a_missing_run_configuration_is_recorded_as_an_empty_dependency() -> None:
    result = do_resolve(rcs={})

    assert result.dependencies == {RC: {}}


@pytest.mark.parametrize(
    ("catalog", "reason", "message"),
    [
        (FakeCatalog(pipelines={}), "PipelineNotFound", "pipeline penguin-pipeline does not exist in KFP"),
        (
            FakeCatalog(versions={"p-1": [PipelineVersion("p-1", "v-old", "v0")]}),
            "PipelineVersionNotFound",
            "pipeline penguin-pipeline has no version v1-abcdef in KFP",
        ),
        (
            FakeCatalog(experiments={}),
            "ExperimentNotFound",
            "experiment penguin-experiment does not exist in KFP",
        ),
    ],
    ids=["pipeline", "version", "experiment"],
)
def test_a_missing_kfp_object_waits_and_is_rechecked(catalog, reason, message) -> None:
    result = do_resolve(catalog=catalog)

    assert isinstance(result, Waiting)
    assert (result.reason, result.message, result.waits_on_kfp) == (reason, message, True)


def test_a_pipeline_without_versions_waits() -> None:
    result = do_resolve(spec={**SEED_SPEC, "pipeline": "penguin-pipeline"}, catalog=FakeCatalog(versions={}))

    assert isinstance(result, Waiting)
    assert result.message == "pipeline penguin-pipeline has no versions in KFP"


def test_an_invalid_filter_is_rejected_before_anything_else() -> None:
    catalog = FakeCatalog()
    spec = {**SEED_SPEC, "artifacts": [{"name": "m", "path": "Pusher:pushed_model[pushed ==]"}]}

    result = do_resolve(spec=spec, rcs={}, catalog=catalog)

    assert isinstance(result, Rejected)
    assert result.reason == "InvalidArtifactFilter"
    assert result.message.startswith("artifact m: ")
    assert catalog.calls == []


def test_a_value_that_does_not_fit_the_declared_type_is_rejected() -> None:
    spec = {**SEED_SPEC, "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "many"}]}

    result = do_resolve(spec=spec)

    assert result == Rejected("InvalidParameter", "parameter TRAINING_RUNS: 'many' is not an integer", {})


def cross_namespace_spec(reference: str) -> dict:
    return {
        **SEED_SPEC,
        "runtimeParameters": [
            {
                "name": "EXAMPLES",
                "valueFrom": {"runConfigurationRef": {"name": reference, "outputArtifact": "examples"}},
            }
        ],
    }


@pytest.mark.parametrize(
    ("reference", "policy", "refused"),
    [
        ("other/gen", ReferencePolicy(), None),
        ("ns/gen", ReferencePolicy(cross_namespace=False), None),
        ("gen", ReferencePolicy(cross_namespace=False), None),
        ("other/gen", ReferencePolicy(cross_namespace=False), "allowCrossNamespaceReferences is false"),
        ("other/gen", ReferencePolicy(watched=frozenset({"ns"})), "the operator does not watch"),
        ("other/gen", ReferencePolicy(watched=frozenset({"ns", "other"})), None),
    ],
)
def test_references_across_namespaces_follow_the_policy(
    reference: str, policy: ReferencePolicy, refused: str | None
) -> None:
    result = resolve(
        RunSpec.from_dict(cross_namespace_spec(reference)),
        namespace="ns",
        run_configurations={reference: rc_with_examples()},
        catalog=FakeCatalog(),
        default_experiment="Default",
        references=policy,
    )

    if refused is None:
        assert isinstance(result, Resolved)
        assert result.parameters["EXAMPLES"] == "s3://examples/1"
        assert reference in result.dependencies  # recorded under the reference as written
    else:
        assert isinstance(result, Rejected)
        assert result.reason == "RunConfigurationReferenceNotAllowed"
        assert refused in result.message
