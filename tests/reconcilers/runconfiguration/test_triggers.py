"""Trigger causes, the Runs answering them, and trigger cycles."""

from __future__ import annotations

import json
from typing import Any

from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.api.run import RunView, spec_version
from reconcilers.api.runconfiguration import RunConfigurationView
from reconcilers.runconfiguration.triggers import (
    CAUSES_ANNOTATION,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_SOURCE_LABEL,
    TRIGGER_SOURCE_NAMESPACE_LABEL,
    TRIGGER_TYPE_LABEL,
    Cause,
    build_run,
    change_causes,
    covered,
    run_name,
    schedule_cause,
    trigger_cycle,
    triggered_state,
)
from tests.support.objects import run

RUN_SPEC = {
    "pipeline": "penguin-pipeline",
    "experimentName": "exp",
    "artifacts": [{"name": "m", "path": "T:o"}],
}


def rc(triggers: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> RunConfigurationView:
    return RunConfigurationView(
        {
            "metadata": {"name": "train", "namespace": "ns", "uid": "rc-uid", "generation": 1},
            "spec": {"run": RUN_SPEC, "triggers": triggers or {}},
            "status": status or {},
        }
    )


def test_a_new_run_configuration_fires_each_change_trigger_once() -> None:
    causes = change_causes(
        rc({"onChange": ["pipeline", "runSpec"], "runConfigurations": ["up", "other/gen"]}),
        pipeline_version="v2",
        upstream={"up": "kfp:1", "other/gen": ""},  # gen has no succeeded run yet
    )

    assert causes == [
        Cause("onChangePipeline", "penguin-pipeline", "v2"),
        Cause("onChangeRunSpec", "train", spec_version(rc().run)),
        Cause("runConfiguration", "up", "kfp:1"),
    ]


def test_recorded_causes_do_not_fire_again_and_new_values_do() -> None:
    view = rc({"onChange": ["pipeline", "runSpec"], "runConfigurations": ["up"]})
    recorded = rc(
        {"onChange": ["pipeline", "runSpec"], "runConfigurations": ["up"]},
        triggered_state(view, pipeline_version="v2", upstream={"up": "kfp:1"}),
    )

    assert change_causes(recorded, pipeline_version="v2", upstream={"up": "kfp:1"}) == []
    assert change_causes(recorded, pipeline_version="v3", upstream={"up": "kfp:2"}) == [
        Cause("onChangePipeline", "penguin-pipeline", "v3"),
        Cause("runConfiguration", "up", "kfp:2"),
    ]


def test_triggers_not_configured_do_not_fire() -> None:
    assert change_causes(rc(), pipeline_version="v2", upstream={}) == []


def test_the_run_answering_causes_is_named_by_them_pinned_owned_and_labelled() -> None:
    causes = [
        Cause("runConfiguration", "other/gen", "kfp:9"),
        Cause("onChangePipeline", "penguin-pipeline", "v2"),
    ]

    obj = build_run(rc(), causes, "v2")

    assert obj["metadata"]["name"] == run_name("train", list(reversed(causes))) == run_name("train", causes)
    assert obj["metadata"]["name"].startswith("train-")
    assert obj["spec"] == {**RUN_SPEC, "pipeline": "penguin-pipeline:v2"}
    [owner] = obj["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "kind": "RunConfiguration",
        "name": "train",
        "uid": "rc-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = obj["metadata"]["labels"]
    assert labels[RUN_CONFIGURATION_LABEL] == "train"
    assert labels[TRIGGER_TYPE_LABEL] == "onChangePipeline"
    assert labels[TRIGGER_SOURCE_LABEL] == "penguin-pipeline"
    assert json.loads(obj["metadata"]["annotations"][CAUSES_ANNOTATION]) == sorted(str(c) for c in causes)


def test_an_upstream_trigger_names_its_source_and_namespace() -> None:
    obj = build_run(rc(), [Cause("runConfiguration", "other/gen", "kfp:9")], "v1")

    labels = obj["metadata"]["labels"]
    assert (labels[TRIGGER_SOURCE_LABEL], labels[TRIGGER_SOURCE_NAMESPACE_LABEL]) == ("gen", "other")


def test_a_scheduled_run_carries_its_tick() -> None:
    from datetime import UTC, datetime

    cause = schedule_cause(datetime(2026, 1, 1, 10, 5, tzinfo=UTC))
    obj = build_run(rc(), [cause], "v1")

    assert obj["metadata"]["labels"][TRIGGER_TYPE_LABEL] == "schedule"
    assert obj["metadata"]["annotations"][SCHEDULED_TIME_ANNOTATION] == "2026-01-01T10:05:00Z"


def test_existing_runs_cover_the_causes_they_were_created_for() -> None:
    causes = [Cause("onChangePipeline", "penguin-pipeline", "v2")]
    created = build_run(rc(), causes, "v2")
    existing = run(
        name=created["metadata"]["name"],
        labels={RUN_CONFIGURATION_LABEL: "train"},
        annotations=created["metadata"]["annotations"],
    )
    by_hand = run(name="manual", labels={RUN_CONFIGURATION_LABEL: "train"})

    assert covered([RunView(existing), RunView(by_hand)]) == set(causes)


def test_a_long_source_still_gives_a_valid_label() -> None:
    name = "p_" + "x" * 100
    label = build_run(rc(), [Cause("onChangePipeline", name, "v1")], "v1")["metadata"]["labels"][
        TRIGGER_SOURCE_LABEL
    ]

    assert len(label) <= 63 and label[0].isalnum() and label[-1].isalnum()


def test_trigger_cycles_are_found_and_chains_are_not() -> None:
    graph = {
        ("ns", "a"): [("ns", "b")],
        ("ns", "b"): [("ns", "c")],
        ("ns", "c"): [("ns", "a")],
        ("ns", "d"): [("ns", "a")],
    }

    assert trigger_cycle(("ns", "a"), lambda n: graph.get(n, [])) == [
        ("ns", "a"),
        ("ns", "b"),
        ("ns", "c"),
        ("ns", "a"),
    ]
    assert trigger_cycle(("ns", "d"), lambda n: graph.get(n, [])) is None
    assert trigger_cycle(("ns", "x"), lambda n: [("ns", "x")]) == [("ns", "x"), ("ns", "x")]
