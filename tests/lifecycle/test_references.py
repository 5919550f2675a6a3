"""Parameters from a RunConfiguration in another namespace (``namespace/name``), and the setting
that confines each namespace to its own."""

from __future__ import annotations

from collections.abc import Callable

from reconcilers.api import GROUP, VERSION
from tests.lifecycle.harness import World

LOCATION = "gs://upstream/examples"


def upstream_in(world: World, namespace: str) -> None:
    """A RunConfiguration ``generator`` in ``namespace`` with a succeeded run's ``examples``."""
    world.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "runconfigurations",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RunConfiguration",
            "metadata": {"name": "generator"},
            "spec": {"run": {"pipeline": "example-generator"}},
        },
    )
    world.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "runconfigurations",
        "generator",
        {
            "status": {
                "latestRuns": {
                    "succeeded": {
                        "providerId": "kfp:up",
                        "artifacts": [{"name": "examples", "location": LOCATION}],
                    }
                }
            }
        },
    )


def spec_from(reference: str) -> dict:
    return {
        "pipeline": "penguin-pipeline:v1-abcdef",
        "experimentName": "penguin-experiment",
        "runtimeParameters": [
            {"name": "TRAINING_RUNS", "value": "3"},
            {
                "name": "EXAMPLES",
                "valueFrom": {"runConfigurationRef": {"name": reference, "outputArtifact": "examples"}},
            },
        ],
    }


def prepare(world: World, make_namespace: Callable[..., str]) -> str:
    world.upload_penguin()
    world.create_experiment()
    other = make_namespace("upstream")
    upstream_in(world, other)
    return other


def test_a_namespace_slash_name_reference_resolves_in_that_namespace(
    world: World, make_namespace: Callable[..., str]
) -> None:
    other = prepare(world, make_namespace)
    world.start_operator(watchNamespaces=[world.namespace, other])

    name = world.create_run(spec_from(f"{other}/generator"))

    status = world.wait_completed(name)
    [kfp_run] = world.kfp_runs()
    assert kfp_run["runtime_config"]["parameters"]["EXAMPLES"] == LOCATION
    assert status["dependencies"]["runConfigurations"][f"{other}/generator"]["providerId"] == "kfp:up"


def test_a_reference_to_another_namespace_is_refused_when_the_setting_forbids_it(
    world: World, make_namespace: Callable[..., str]
) -> None:
    other = prepare(world, make_namespace)
    world.start_operator(watchNamespaces=[world.namespace, other], allowCrossNamespaceReferences=False)

    name = world.create_run(spec_from(f"{other}/generator"))

    status = world.wait_run(
        name, lambda s: s.get("synchronizationState") == "Failed", "the Run to be refused"
    )
    resolved = world.condition(name, "DependenciesResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "RunConfigurationReferenceNotAllowed")
    assert "allowCrossNamespaceReferences is false" in resolved["message"]
    world.wait_event(name, "RunConfigurationReferenceNotAllowed")
    assert world.kfp_runs() == []
    assert not status.get("providerId")
