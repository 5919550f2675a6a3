"""Pipeline and Experiment resources against the real control plane and the KFP emulator.

Compiled Pipelines and an Experiment appear in KFP under the configured names; a spec change uploads
exactly one new version, which Runs without a version then submit and ``onChange: [pipeline]``
answers with exactly one Run; a name someone else took in KFP is refused and left alone; deleting
removes only what the operator made. Pipelines built from an image are compiled by a Job, which
the local executor runs with the real KFP SDK, and every way a compile goes wrong ends in a
condition and an Event.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from kfp_devstack.examples import PIPELINES_DIR
from kfp_devstack.jobs import LocalJobExecutor
from kfp_devstack.kfp_sdk import kfp_sdk_python
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, RUN_CONFIGURATION_LABEL, VERSION
from reconcilers.api.pipeline import PipelineSpec, image_version
from tests.lifecycle.harness import TIMEOUT, World, on_both_backends

PENGUIN_SPEC = (PIPELINES_DIR / "penguin_pipeline.yaml").read_text()
GENERATOR_SPEC = (PIPELINES_DIR / "example_generator.yaml").read_text()
PARAMETERS = [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://penguins"}]
COMPILER_ACCOUNT = "kfp-pipeline-compiler"


# -- helpers ---------------------------------------------------------------------------------------


def create(world: World, kind: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    world.custom.create_namespaced_custom_object(GROUP, VERSION, world.namespace, f"{kind.lower()}s", body)


def get(world: World, kind: str, name: str) -> dict[str, Any] | None:
    try:
        return world.custom.get_namespaced_custom_object(
            GROUP, VERSION, world.namespace, f"{kind.lower()}s", name
        )
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise


def delete(world: World, kind: str, name: str) -> None:
    world.custom.delete_namespaced_custom_object(GROUP, VERSION, world.namespace, f"{kind.lower()}s", name)
    wait_until(
        lambda: get(world, kind, name) is None, timeout=TIMEOUT, message=f"{kind} {name} to be deleted"
    )


def synchronized(obj: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Synchronized"), {})


def wait_status(world: World, kind: str, name: str, check: Any, what: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        obj = get(world, kind, name)
        return obj if obj is not None and check(obj.get("status") or {}, synchronized(obj)) else None

    return wait_until(
        found,
        timeout=TIMEOUT,
        message=lambda: (
            f"{kind} {name} {what}; status "
            f"{json.dumps((get(world, kind, name) or {}).get('status'), indent=1)}"
            f"\noperator log:\n{world.operators[-1].tail() if world.operators else ''}"
        ),
    )


def wait_ready(world: World, kind: str, name: str, *, not_version: str = "") -> dict[str, Any]:
    return wait_status(
        world,
        kind,
        name,
        lambda s, c: (
            s.get("synchronizationState") == "Succeeded" and s.get("version") not in ("", not_version)
        ),
        "to be synchronized",
    )


def wait_reason(world: World, kind: str, name: str, reason: str) -> dict[str, Any]:
    return wait_status(world, kind, name, lambda s, c: c.get("reason") == reason, f"to say {reason}")


def kfp_get(world: World, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{world.emulator.url}/apis/v2beta1/{path}", timeout=10) as response:
        return json.loads(response.read())


def kfp_list(world: World, collection: str, key: str, query: str = "") -> list[dict[str, Any]]:
    """Every item of a KFP collection, page by page: a KFP API server shared with other tests
    holds more than one page."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = kfp_get(world, f"{collection}?page_size=200&page_token={urllib.parse.quote(token)}{query}")
        items += page.get(key, [])
        token = page.get("next_page_token", "")
        if not token:
            return items


def kfp_pipeline(world: World, name: str) -> dict[str, Any] | None:
    return next((p for p in kfp_list(world, "pipelines", "pipelines") if p["name"] == name), None)


def kfp_versions(world: World, pipeline_id: str) -> list[dict[str, Any]]:
    return kfp_list(world, f"pipelines/{pipeline_id}/versions", "pipeline_versions", "&sort_by=created_at")


def kfp_experiment(world: World, name: str) -> dict[str, Any] | None:
    return next((e for e in kfp_list(world, "experiments", "experiments") if e["display_name"] == name), None)


def runs_of(world: World, rc: str) -> list[dict[str, Any]]:
    return world.custom.list_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "runs", label_selector=f"{RUN_CONFIGURATION_LABEL}={rc}"
    )["items"]


def with_description(spec: str, description: str) -> str:
    document = yaml.safe_load(spec)
    document["pipelineInfo"]["description"] = description
    return yaml.safe_dump(document, sort_keys=False)


# -- compiled Pipelines and Experiments -------------------------------------------------------------


@on_both_backends
def test_compiled_pipelines_and_experiments_in_kfp_new_versions_runs_and_deletion(world: World) -> None:
    ns = world.namespace
    # A KFP pipeline someone else made under the name a Pipeline of this namespace maps to.
    theirs = world.examples.pipeline(f"{ns}-taken", "theirs", PIPELINES_DIR / "example_generator.yaml")
    world.start_operator(kfpNames="namespace-name")
    # A Run naming a Pipeline that does not exist yet waits, and goes once the Pipeline is ready.
    early = world.create_run({"pipeline": "generator"})
    world.wait_run(early, lambda s: s.get("synchronizationState") == "Creating", "waiting")

    create(world, "Experiment", "penguin-experiment", {"description": "Penguin runs"})
    create(world, "Pipeline", "generator", {"compiled": {"pipelineSpec": GENERATOR_SPEC}})
    create(world, "Pipeline", "penguin", {"compiled": {"pipelineSpec": PENGUIN_SPEC}})
    create(world, "Pipeline", "taken", {"compiled": {"pipelineSpec": GENERATOR_SPEC}})

    # Both appear in KFP under <namespace>-<name>, marked as the operator's.
    pipeline = wait_ready(world, "Pipeline", "penguin")
    v1 = pipeline["status"]["version"]
    kfp = kfp_pipeline(world, f"{ns}-penguin")
    assert kfp is not None and pipeline["status"]["providerId"] == f"kfp:{kfp['pipeline_id']}"
    assert [v["name"] for v in kfp_versions(world, kfp["pipeline_id"])] == [v1]
    experiment = wait_ready(world, "Experiment", "penguin-experiment")
    kfp_exp = kfp_experiment(world, f"{ns}-penguin-experiment")
    assert kfp_exp is not None and kfp_exp["description"].startswith("Penguin runs")
    assert experiment["status"]["providerId"] == f"kfp:{kfp_exp['experiment_id']}"

    # The name someone else took: refused, with an Event; their pipeline is untouched.
    taken = wait_reason(world, "Pipeline", "taken", "PipelineNameConflict")
    assert taken["status"]["synchronizationState"] == "Failed"
    world.wait_event("taken", "PipelineNameConflict")
    assert [v["name"] for v in kfp_versions(world, theirs.pipeline_id)] == ["theirs"]

    # A RunConfiguration triggered by new versions, and a Run without a version, use v1.
    run_spec = {
        "pipeline": "penguin",
        "experimentName": "penguin-experiment",
        "runtimeParameters": PARAMETERS,
    }
    world.create_run_configuration("train", {"run": run_spec, "triggers": {"onChange": ["pipeline"]}})
    [first] = wait_until(lambda: runs_of(world, "train"), timeout=TIMEOUT, message="the first Run of train")
    assert first["spec"]["pipeline"] == f"penguin:{v1}"
    name = world.create_run(run_spec)
    status = world.wait_submitted(name)
    assert status["observedPipelineVersion"] == v1
    kfp_run = world.kfp_run(status["providerId"].removeprefix("kfp:"))
    assert kfp_run["pipeline_version_reference"]["pipeline_id"] == kfp["pipeline_id"]
    assert kfp_run["experiment_id"] == kfp_exp["experiment_id"]

    # A spec change: exactly one new version; Runs without a version take it; one more triggered Run.
    world.next_second()  # KFP orders versions by the second they were made in
    world.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        "pipelines",
        "penguin",
        {"spec": {"compiled": {"pipelineSpec": with_description(PENGUIN_SPEC, "Trains penguins, better.")}}},
    )
    v2 = wait_ready(world, "Pipeline", "penguin", not_version=v1)["status"]["version"]
    assert [v["name"] for v in kfp_versions(world, kfp["pipeline_id"])] == [v1, v2]
    triggered = wait_until(
        lambda: (runs := runs_of(world, "train")) and len(runs) >= 2 and runs,
        timeout=TIMEOUT,
        message="a Run of train for the new version",
    )
    assert sorted(r["spec"]["pipeline"] for r in triggered) == sorted([f"penguin:{v1}", f"penguin:{v2}"])
    second = world.create_run(run_spec)
    assert world.wait_submitted(second)["observedPipelineVersion"] == v2
    assert len(runs_of(world, "train")) == 2  # one Run per version, still
    assert [v["name"] for v in kfp_versions(world, kfp["pipeline_id"])] == [v1, v2]

    generator = wait_ready(world, "Pipeline", "generator")
    assert world.wait_submitted(early)["observedPipelineVersion"] == generator["status"]["version"]

    # Deleting removes what the operator made, and only that: a version someone added by hand to
    # the operator's KFP pipeline stays, and so does the pipeline then; one without goes entirely.
    world.examples.pipeline(f"{ns}-penguin", "by-hand", PIPELINES_DIR / "penguin_pipeline.yaml")
    delete(world, "Pipeline", "penguin")
    assert [v["name"] for v in kfp_versions(world, kfp["pipeline_id"])] == ["by-hand"]
    world.wait_event("penguin", "KfpPipelineKept")
    delete(world, "Pipeline", "generator")
    assert kfp_pipeline(world, f"{ns}-generator") is None
    delete(world, "Pipeline", "taken")
    assert [v["name"] for v in kfp_versions(world, theirs.pipeline_id)] == ["theirs"]
    delete(world, "Experiment", "penguin-experiment")
    archived = kfp_experiment(world, f"{ns}-penguin-experiment")  # it has runs: archived, not deleted
    assert archived is not None and archived["storage_state"] == "ARCHIVED"


# -- Pipelines built from images -------------------------------------------------------------------


@pytest.fixture(scope="session")
def kfp_sdk() -> Path:
    """The real KFP SDK in its cached virtualenv (made on first use: PyPI, a minute or two)."""
    return kfp_sdk_python()


@pytest.fixture
def executor(world: World, kfp_sdk: Path, tmp_path: Path) -> Iterator[LocalJobExecutor]:
    slow = tmp_path / "slow-image"
    slow.mkdir()
    (slow / "slow.py").write_text("import time\n\ntime.sleep(600)\n")
    with LocalJobExecutor(
        world.api_client,
        images={"kfp-examples": PIPELINES_DIR, "slow-pipelines": slow},
        work_dir=tmp_path / "jobs",
        namespaces=[world.namespace],
        image_python=lambda: kfp_sdk,
    ) as running:
        yield running


def compiler_account(world: World) -> None:
    """The compile Jobs' ServiceAccount with the one permission they need: create ConfigMaps."""
    ns = world.namespace
    rbac = kubernetes.client.RbacAuthorizationV1Api(world.api_client)
    world.core.create_namespaced_service_account(ns, {"metadata": {"name": COMPILER_ACCOUNT}})
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "pipeline-compiler"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "pipeline-compiler"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pipeline-compiler"},
            "subjects": [{"kind": "ServiceAccount", "name": COMPILER_ACCOUNT, "namespace": ns}],
        },
    )


def image_spec(image: str, function: str) -> dict[str, Any]:
    return {"image": image, "pipelineFunction": function, "env": [{"name": "TEAM", "value": "penguins"}]}


def kfp_delete(world: World, path: str) -> None:
    request = urllib.request.Request(f"{world.emulator.url}/apis/v2beta1/{path}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10):
        pass


@on_both_backends
def test_pipelines_and_experiments_deleted_in_kfp_by_hand_are_made_again(world: World) -> None:
    ns = world.namespace
    world.start_operator(kfpNames="namespace-name", safetyCheckInterval="1s")
    create(world, "Experiment", "lost-experiment", {"description": "Lost"})
    create(world, "Pipeline", "lost-pipeline", {"compiled": {"pipelineSpec": GENERATOR_SPEC}})
    experiment = wait_ready(world, "Experiment", "lost-experiment")
    pipeline = wait_ready(world, "Pipeline", "lost-pipeline")
    kfp = kfp_pipeline(world, f"{ns}-lost-pipeline")
    assert kfp is not None
    [version] = kfp_versions(world, kfp["pipeline_id"])

    # Someone deletes both in the KFP UI.
    kfp_delete(world, f"experiments/{experiment['status']['providerId'].partition(':')[2]}")
    kfp_delete(world, f"pipelines/{kfp['pipeline_id']}/versions/{version['pipeline_version_id']}")

    made_again = wait_status(
        world,
        "Experiment",
        "lost-experiment",
        lambda s, c: s.get("providerId") not in (None, experiment["status"]["providerId"]),
        "to name a new KFP experiment",
    )
    found = kfp_experiment(world, f"{ns}-lost-experiment")
    assert found is not None and made_again["status"]["providerId"] == f"kfp:{found['experiment_id']}"
    assert found["description"].startswith("Lost")
    wait_until(
        lambda: (
            [v["name"] for v in kfp_versions(world, kfp["pipeline_id"])] == [pipeline["status"]["version"]]
        ),
        timeout=TIMEOUT,
        message="the deleted version to be uploaded again",
    )
    world.wait_event("lost-experiment", "DeletedInKfp")
    world.wait_event("lost-pipeline", "DeletedInKfp")
    assert get(world, "Pipeline", "lost-pipeline")["status"]["synchronizationState"] == "Succeeded"


def test_pipelines_built_from_images_are_compiled_by_a_job_with_the_real_kfp_sdk(
    world: World, executor: LocalJobExecutor
) -> None:
    compiler_account(world)
    world.start_operator(pipelines={"compilerImage": "kfp-operator:dev", "compileTimeout": "15s"})
    jobs = kubernetes.client.BatchV1Api(world.api_client)

    good = image_spec("kfp-examples:v1", "typed_parameters.typed_parameters")
    create(world, "Pipeline", "typed", good)
    create(world, "Pipeline", "component", image_spec("kfp-examples:v1", "typed_parameters.echo"))
    create(world, "Pipeline", "missing", image_spec("kfp-examples:v1", "no_such_module.pipeline"))
    create(world, "Pipeline", "slow", image_spec("slow-pipelines:v1", "slow.pipeline"))
    create(world, "Pipeline", "untagged", image_spec("kfp-examples", "typed_parameters.typed_parameters"))

    # The good one: compiled by the SDK in the Job, handed back through a ConfigMap, uploaded.
    typed = wait_ready(world, "Pipeline", "typed")
    version = typed["status"]["version"]
    assert version == image_version(PipelineSpec.from_dict(good)) and version.startswith("v1-")
    kfp = kfp_pipeline(world, "typed")
    assert kfp is not None
    [uploaded] = kfp_versions(world, kfp["pipeline_id"])
    assert uploaded["name"] == version
    assert uploaded["pipeline_spec"]["pipelineInfo"]["name"] == "typed-parameters"  # what the SDK wrote
    assert "Compiling" in world.event_reasons("typed") and "Uploaded" in world.event_reasons("typed")
    # Its Job and ConfigMap are gone once the version is in KFP.
    assert [
        j.metadata.name for j in jobs.list_namespaced_job(world.namespace).items if "typed" in j.metadata.name
    ] == []
    assert not [
        c for c in world.core.list_namespaced_config_map(world.namespace).items if "typed" in c.metadata.name
    ]

    # Each way it goes wrong: a condition and an Event with the reason, and a message that helps.
    component = wait_reason(world, "Pipeline", "component", "NotAPipeline")
    assert "is a component, not a pipeline" in synchronized(component)["message"]
    missing = wait_reason(world, "Pipeline", "missing", "ModuleNotFound")
    assert "no_such_module" in synchronized(missing)["message"]
    untagged = wait_reason(world, "Pipeline", "untagged", "InvalidImage")
    assert "has no tag" in synchronized(untagged)["message"]
    slow = wait_reason(world, "Pipeline", "slow", "CompileTimedOut")
    assert slow["status"]["synchronizationState"] == "Failed"
    for name, reason in [
        ("component", "NotAPipeline"),
        ("missing", "ModuleNotFound"),
        ("untagged", "InvalidImage"),
        ("slow", "CompileTimedOut"),
    ]:
        world.wait_event(name, reason)
    remaining = {
        j.metadata.name.split("-compile-")[0] for j in jobs.list_namespaced_job(world.namespace).items
    }
    assert remaining == {"component", "missing"}  # failed Jobs stay for their logs; the timed-out one went
