"""ExperimentService."""

from __future__ import annotations

import json

import pytest
from kfp_server_api import V2beta1Experiment
from kfp_server_api.exceptions import ApiException

from tests.emulator.helpers import error_body, raw_call, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


def _by_name(name: str) -> str:
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def test_the_default_experiment_exists_from_the_start(kfp):
    listed = kfp.experiments.experiment_service_list_experiments(filter=_by_name("Default"))

    [default] = listed.experiments
    assert default.description == "All runs created without specifying an experiment will be grouped here."
    assert default.storage_state == "AVAILABLE"
    assert default.namespace is None


def test_create_get_and_list_an_experiment(kfp, emulator):
    name = unique("experiment")
    created = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=name, description="d", namespace="ignored-in-single-user")
    )

    assert (created.display_name, created.description, created.storage_state) == (name, "d", "AVAILABLE")
    assert created.namespace is None  # every namespace argument is "" in single-user mode
    fetched = raw_call(emulator.url, "GET", f"/apis/v2beta1/experiments/{created.experiment_id}").body
    assert fetched["last_run_created_at"] == "1970-01-01T00:00:00Z"
    listed = kfp.experiments.experiment_service_list_experiments(filter=_by_name(name))
    assert [e.experiment_id for e in listed.experiments] == [created.experiment_id]


def test_a_taken_display_name_is_a_409(kfp):
    name = unique("experiment")
    kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(display_name=name))

    with pytest.raises(ApiException) as raised:
        kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(display_name=name))

    assert raised.value.status == 409
    assert error_body(raised.value)["details"][0]["message"].startswith(
        f"Failed to create a new experiment. The name {name} already exists"
    )


def test_an_empty_display_name_is_a_500(kfp):
    with pytest.raises(ApiException) as raised:
        kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(description="no name"))

    assert raised.value.status == 500
    body = error_body(raised.value)
    assert (body["code"], body["details"][0]["message"]) == (13, "Internal Server Error")


def test_unknown_experiment_is_a_404(kfp):
    with pytest.raises(ApiException) as raised:
        kfp.experiments.experiment_service_get_experiment("missing")

    assert raised.value.status == 404
    assert error_body(raised.value)["details"][0]["message"] == "Experiment missing not found"


def test_archive_archives_the_runs_and_unarchive_only_the_experiment(kfp, penguin):
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"))
    )
    run = kfp.create_run(penguin.pipeline_id, experiment_id=experiment.experiment_id)

    kfp.experiments.experiment_service_archive_experiment(experiment.experiment_id)
    assert (
        kfp.experiments.experiment_service_get_experiment(experiment.experiment_id).storage_state
        == "ARCHIVED"
    )
    assert kfp.runs.run_service_get_run(run.run_id).storage_state == "ARCHIVED"

    with pytest.raises(ApiException) as raised:
        kfp.runs.run_service_unarchive_run(run.run_id)
    assert raised.value.status == 400  # FailedPrecondition while the experiment is archived

    kfp.experiments.experiment_service_unarchive_experiment(experiment.experiment_id)
    assert (
        kfp.experiments.experiment_service_get_experiment(experiment.experiment_id).storage_state
        == "AVAILABLE"
    )
    assert kfp.runs.run_service_get_run(run.run_id).storage_state == "ARCHIVED"
    kfp.runs.run_service_unarchive_run(run.run_id)
    assert kfp.runs.run_service_get_run(run.run_id).storage_state == "AVAILABLE"


def test_delete_then_get_is_a_404(kfp):
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"))
    )

    assert kfp.as_json(kfp.experiments.experiment_service_delete_experiment(experiment.experiment_id)) == {}
    with pytest.raises(ApiException) as raised:
        kfp.experiments.experiment_service_get_experiment(experiment.experiment_id)
    assert raised.value.status == 404


def test_creating_a_run_sets_last_run_created_at(kfp, penguin):
    experiment = kfp.experiments.experiment_service_create_experiment(
        V2beta1Experiment(display_name=unique("e"))
    )

    run = kfp.create_run(penguin.pipeline_id, experiment_id=experiment.experiment_id)

    fetched = kfp.experiments.experiment_service_get_experiment(experiment.experiment_id)
    assert fetched.last_run_created_at == run.created_at
