"""The RunConfiguration CRD: the reference shape is accepted, and its status is a subresource."""

from __future__ import annotations

import kubernetes
import pytest

from kfp_devstack.examples import example_generator_run_configuration

GROUP, VERSION, PLURAL = "pipelines.kubeflow.org", "v1alpha5", "runconfigurations"


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def test_a_run_configuration_with_triggers_is_accepted(custom, namespace) -> None:
    body = example_generator_run_configuration(namespace)
    body["spec"]["triggers"] = {
        "schedules": ["0 * * * *"],
        "onChange": ["pipeline", "runSpec"],
        "runConfigurations": ["upstream"],
    }

    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    assert created["spec"] == body["spec"]


def test_latest_runs_are_written_through_the_status_subresource_only(custom, namespace, kubectl) -> None:
    name = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, example_generator_run_configuration(namespace)
    )["metadata"]["name"]
    latest = {"providerId": "kfp:1", "artifacts": [{"name": "examples", "location": "s3://e"}]}

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"latestRuns": {}}}
    )
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"latestRuns": {"succeeded": latest}}}
    )

    assert patched["status"]["latestRuns"]["succeeded"] == latest
    header, row = kubectl("get", "mlrc", name, "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "SYNCHRONIZATIONSTATE", "PROVIDER", "LATESTSUCCEEDEDRUN", "AGE"]
    assert "kfp:1" in row.split()


def test_an_unknown_trigger_is_rejected(custom, namespace) -> None:
    body = example_generator_run_configuration(namespace)
    body["spec"]["triggers"] = {"onChange": ["weather"]}

    with pytest.raises(kubernetes.client.ApiException) as raised:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    assert raised.value.status == 422
    assert "spec.triggers.onChange[0]: Unsupported value" in raised.value.body
