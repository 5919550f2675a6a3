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
    latest = {
        "providerId": "kfp:1",
        "artifacts": [{"name": "examples", "location": "s3://e"}],
        "runName": f"{namespace}/generator-1",
    }

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"latestRuns": {}}}
    )
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"latestRuns": {"succeeded": latest}}}
    )

    assert patched["status"]["latestRuns"]["succeeded"] == latest
    header, row = kubectl("get", "mlrc", name, "-n", namespace).stdout.splitlines()
    assert header.split() == [
        "NAME",
        "SYNCHRONIZATIONSTATE",
        "PROVIDER",
        "LATESTSUCCEEDEDRUN",
        "NEXTSCHEDULE",
        "AGE",
    ]
    assert f"{namespace}/generator-1" in row.split()


def test_an_unknown_trigger_is_rejected(custom, namespace) -> None:
    body = example_generator_run_configuration(namespace)
    body["spec"]["triggers"] = {"onChange": ["weather"]}

    with pytest.raises(kubernetes.client.ApiException) as raised:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    assert raised.value.status == 422
    assert "spec.triggers.onChange[0]: Unsupported value" in raised.value.body


def rc_with(namespace: str, name: str = "rc", **spec: object) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RunConfiguration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"run": {"pipeline": "example-generator"}, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"triggers": {"schedules": ["every minute"]}}, "should match"),
        ({"triggers": {"schedules": ["* * * *"]}}, "should match"),
        ({"triggers": {"runConfigurations": ["a/b/c"]}}, "should match"),
        (
            {"schedulePolicy": {"startTime": "2026-02-01T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}},
            "endTime must be after startTime",
        ),
        ({"schedulePolicy": {"concurrencyPolicy": "Sometimes"}}, "Unsupported value"),
        ({"successfulRunsHistoryLimit": -1}, "should be greater than or equal to 0"),
    ],
)
def test_invalid_schedules_and_triggers_are_refused_by_the_api_server(
    custom, namespace, spec, message
) -> None:
    with pytest.raises(kubernetes.client.ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, rc_with(namespace, **spec))

    assert refused.value.status == 422
    assert message in refused.value.body


def test_a_name_longer_than_a_label_value_is_refused(custom, namespace) -> None:
    with pytest.raises(kubernetes.client.ApiException) as refused:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, rc_with(namespace, "x" * 64)
        )

    assert refused.value.status == 422
    assert "at most 63 characters" in refused.value.body


def test_schedules_and_policies_within_the_rules_are_accepted(custom, namespace) -> None:
    spec = {
        "triggers": {
            "schedules": ["*/5 * * * *", "0 0 * * * *", "@hourly"],
            "onChange": ["pipeline", "runSpec"],
        },
        "schedulePolicy": {
            "timeZone": "Europe/London",
            "startTime": "2026-01-01T00:00:00Z",
            "endTime": "2027-01-01T00:00:00Z",
            "startingDeadlineSeconds": 300,
            "concurrencyPolicy": "Forbid",
        },
        "successfulRunsHistoryLimit": 5,
        "failedRunsHistoryLimit": 0,
    }

    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, rc_with(namespace, **spec)
    )

    assert created["spec"]["schedulePolicy"] == spec["schedulePolicy"]
