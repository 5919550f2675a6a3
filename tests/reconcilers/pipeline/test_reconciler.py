"""The Pipeline reconciler, one reconcile at a time: cached Pipeline, KFP and cluster state in; KFP
requests, Kubernetes writes, status, Events and the requeue out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from controller.keys import ObjectKey
from controller.reconcile import Result
from controller.resource import CONFIGMAPS
from reconcilers.api import FINALIZER
from reconcilers.api.kfp_objects import ADOPT_ANNOTATION, NAMES_AS_IS, NAMES_NAMESPACED, Owner, owner_of
from reconcilers.api.pipeline import PIPELINES, PipelineView, content_version, image_version
from reconcilers.clients import KfpError
from reconcilers.indexes import PIPELINE_INDEX, rc_pipeline_index, run_pipeline_index
from reconcilers.pipeline import job as jobs
from reconcilers.pipeline.reconciler import PipelineReconciler, PipelineSettings
from reconcilers.pipeline.spec import load_compiled
from reconcilers.timestamps import format_time
from tests.reconcilers.fakes import NOW
from tests.reconcilers.resource_fakes import (
    ResourceFixture,
    condition,
    fails_quietly_again,
    waiting_on_kfp,
    written,
)
from tests.support.objects import run
from tests.support.resources import GENERATOR_SPEC, PENGUIN_SPEC, compiled, from_image, pipeline

RECHECK, POLL, TIMEOUT, PRESENCE = 30.0, 2.0, 600.0, 900.0
OWNER = Owner("Pipeline", "ns", "penguin", "uid-penguin")
PENGUIN = load_compiled(PENGUIN_SPEC)
PENGUIN_VERSION = content_version(PENGUIN.canonical)
IMAGE_VERSION = image_version(PipelineView(pipeline(from_image())).spec)
KEY = ObjectKey("ns", "penguin")


def reconciler(f: ResourceFixture, *, naming: str = NAMES_AS_IS, retention: int = 0, compiler: str = "op:1"):
    f.runs.add_indexer(PIPELINE_INDEX, run_pipeline_index)
    f.run_configurations.add_indexer(PIPELINE_INDEX, rc_pipeline_index)
    return PipelineReconciler(
        pipelines=f.pipelines,
        runs=f.runs,
        run_configurations=f.run_configurations,
        kube=f.kube,
        kfp=f.kfp_resources,
        recorder=f.recorder,
        clock=f.clock,
        settings=PipelineSettings(
            provider="kfp",
            naming=naming,
            compile=jobs.CompileSettings(image=compiler, service_account="compiler", timeout_seconds=TIMEOUT),
            version_retention=retention,
            recheck_interval=RECHECK,
            poll_interval=POLL,
            presence_check_interval=PRESENCE,
            deletion_timeout=timedelta(minutes=10),
        ),
    )


def synced(version: str, *, pipeline_id: str = "p-ours", name: str = "penguin") -> dict[str, Any]:
    return {
        "synchronizationState": "Succeeded",
        "version": version,
        "kfpName": name,
        "providerId": f"kfp:{pipeline_id}",
        "observedGeneration": 1,
        "conditions": [],
    }


def failed(version: str, reason: str) -> dict[str, Any]:
    condition = {
        "type": "Synchronized",
        "status": "False",
        "reason": reason,
        "message": "m",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    return {
        "synchronizationState": "Failed",
        "version": version,
        "kfpName": "penguin",
        "observedGeneration": 1,
        "conditions": [condition],
    }


def our_pipeline(f: ResourceFixture, *versions: str, pipeline_id: str = "p-ours") -> None:
    f.kfp_resources.add_pipeline("penguin", OWNER.describe("Pipeline ns/penguin"), pipeline_id=pipeline_id)
    for version in versions:
        digest = PENGUIN.digest if version == PENGUIN_VERSION else None
        marker = Owner("Pipeline", "ns", "penguin", "uid-penguin", digest)
        f.kfp_resources.add_version(pipeline_id, version, marker.describe())


def job_for(version: str = IMAGE_VERSION, **status: Any) -> dict[str, Any]:
    view = PipelineView(pipeline(from_image()))
    job = jobs.compile_job(view, version, "penguin", jobs.CompileSettings("op:1", "compiler", TIMEOUT))
    job["metadata"]["uid"] = "job-uid"
    job["metadata"]["creationTimestamp"] = format_time(NOW - timedelta(seconds=60))
    job["status"] = status
    return job


def output(data: dict[str, str], owner_uid: str = "job-uid") -> dict[str, Any]:
    name = jobs.job_name(PipelineView(pipeline(from_image())), IMAGE_VERSION)
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": owner_uid}],
        },
        "data": data,
    }


COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}]}
FAILED_JOB = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}


@dataclass
class Case:
    name: str
    obj: dict[str, Any]
    setup: Callable[[ResourceFixture], None] = lambda f: None
    kfp: list[str] = field(default_factory=list)  # KFP verbs, in order
    kube: list[str] = field(default_factory=list)  # Kubernetes verbs, in order
    state: str | None = None
    reason: str | None = None
    events: list[str] = field(default_factory=list)
    result: Result = field(default_factory=lambda: Result(requeue_after=PRESENCE))
    naming: str = NAMES_AS_IS


CASES = [
    Case(
        "a compiled Pipeline new to KFP: the finalizer, then the KFP pipeline and its first version",
        pipeline(compiled()),
        kfp=["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Succeeded",
        reason="Succeeded",
        events=["Uploaded"],
    ),
    Case(
        "namespaced KFP names",
        pipeline(compiled()),
        kfp=["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Succeeded",
        events=["Uploaded"],
        naming=NAMES_NAMESPACED,
    ),
    Case(
        "converged: nothing is asked of KFP or written until its presence check is due",
        pipeline(compiled(), finalizer=True, status=synced(PENGUIN_VERSION)),
        result=Result(requeue_after=PRESENCE),
    ),
    Case(
        "a new version of the spec: one upload into the existing pipeline",
        pipeline(compiled(GENERATOR_SPEC), finalizer=True, status=synced(PENGUIN_VERSION)),
        setup=lambda f: our_pipeline(f, PENGUIN_VERSION),
        kfp=["get_pipeline_by_name", "find_pipeline_version", "upload_pipeline_version"],
        kube=["patch_status"],
        state="Succeeded",
        events=["Uploaded"],
    ),
    Case(
        "the version is in KFP already (uploaded before a crash): recorded, not uploaded again",
        pipeline(compiled()),
        setup=lambda f: our_pipeline(f, PENGUIN_VERSION),
        kfp=["get_pipeline_by_name", "find_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Succeeded",
    ),
    Case(
        "a KFP pipeline of that name made by someone else: refused, nothing written to KFP",
        pipeline(compiled()),
        setup=lambda f: f.kfp_resources.add_pipeline("penguin", "uploaded by hand"),
        kfp=["get_pipeline_by_name"],
        kube=["add_finalizer", "patch_status"],
        state="Failed",
        reason="PipelineNameConflict",
        events=["PipelineNameConflict"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "another namespace's Pipeline of that name (names as they are): refused",
        pipeline(compiled()),
        setup=lambda f: f.kfp_resources.add_pipeline(
            "penguin", Owner("Pipeline", "other", "penguin", "uid-x").describe()
        ),
        kfp=["get_pipeline_by_name"],
        kube=["add_finalizer", "patch_status"],
        state="Failed",
        reason="PipelineNameConflict",
        events=["PipelineNameConflict"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "adopting someone else's pipeline: versions are added to it",
        pipeline(compiled(), annotations={ADOPT_ANNOTATION: "true"}),
        setup=lambda f: f.kfp_resources.add_pipeline("penguin", "uploaded by hand"),
        kfp=["get_pipeline_by_name", "find_pipeline_version", "upload_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Succeeded",
        events=["Uploaded"],
    ),
    Case(
        "our pipeline has a version of that name someone else uploaded: refused",
        pipeline(compiled()),
        setup=lambda f: (
            our_pipeline(f),
            f.kfp_resources.add_version("p-ours", PENGUIN_VERSION, "by hand"),
        ),
        kfp=["get_pipeline_by_name", "find_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Failed",
        reason="VersionConflict",
        events=["VersionConflict"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "an explicit version already uploaded with other content: refused for good",
        pipeline(compiled(GENERATOR_SPEC, version="v1")),
        setup=lambda f: (
            our_pipeline(f),
            f.kfp_resources.add_version(
                "p-ours", "v1", Owner("Pipeline", "ns", "penguin", "uid-penguin", PENGUIN.digest).describe()
            ),
        ),
        kfp=["get_pipeline_by_name", "find_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Failed",
        reason="VersionContentChanged",
        events=["VersionContentChanged"],
    ),
    Case(
        "an invalid compiled spec: Failed at once, KFP is not asked",
        pipeline(compiled("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n")),
        kube=["patch_status"],
        state="Failed",
        reason="InvalidPipelineSpec",
        events=["InvalidPipelineSpec"],
        result=Result(),  # only a change of the spec mends it
    ),
    Case(
        "KFP refuses the upload (400): Failed with KFP's message",
        pipeline(compiled()),
        setup=lambda f: f.kfp_resources.errors.setdefault(
            "upload_pipeline_version", [KfpError("upload_pipeline_version", 400, "HTTP 400: bad spec")]
        ),
        kfp=["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"],
        kube=["add_finalizer", "patch_status"],
        state="Failed",
        reason="InvalidPipelineSpec",
        events=["InvalidPipelineSpec"],
    ),
    Case(
        "a ConfigMap source that does not exist yet: waits, looking again later",
        pipeline({"compiled": {"configMapKeyRef": {"name": "specs", "key": "penguin.yaml"}}}),
        kube=["get", "patch_status"],
        state="Creating",
        reason="ConfigMapNotFound",
        events=["ConfigMapNotFound"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "a ConfigMap without the key: Failed",
        pipeline({"compiled": {"configMapKeyRef": {"name": "specs", "key": "penguin.yaml"}}}),
        setup=lambda f: f.kube.put(
            CONFIGMAPS, {"metadata": {"name": "specs", "namespace": "ns"}, "data": {"other.yaml": "x"}}
        ),
        kube=["get", "patch_status"],
        state="Failed",
        reason="InvalidPipelineSpec",
        events=["InvalidPipelineSpec"],
        result=Result(),  # only a change of the spec mends it
    ),
    Case(
        "a ConfigMap source: uploaded, and looked at again later (ConfigMaps are not watched)",
        pipeline({"compiled": {"configMapKeyRef": {"name": "specs", "key": "penguin.yaml"}}}),
        setup=lambda f: f.kube.put(
            CONFIGMAPS,
            {"metadata": {"name": "specs", "namespace": "ns"}, "data": {"penguin.yaml": PENGUIN_SPEC}},
        ),
        kfp=["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"],
        kube=["get", "add_finalizer", "patch_status"],
        state="Succeeded",
        events=["Uploaded"],
        result=Result(requeue_after=RECHECK),
    ),
    Case(
        "an image without a tag: Failed at once",
        pipeline(from_image("ghcr.io/team/pipelines")),
        kube=["patch_status"],
        state="Failed",
        reason="InvalidImage",
        events=["InvalidImage"],
        result=Result(),  # only a change of the spec mends it
    ),
    Case(
        "no compiler image configured: Failed, saying which setting",
        pipeline(from_image()),
        kube=["patch_status"],
        state="Failed",
        reason="CompilerNotConfigured",
        events=["CompilerNotConfigured"],
        result=Result(),  # only a change of the spec mends it
    ),
    Case(
        "from an image: a compile Job is created, and polled",
        pipeline(from_image()),
        kfp=["get_pipeline_by_name"],
        kube=["add_finalizer", "get", "create", "patch_status"],
        state="Creating",
        reason="Compiling",
        events=["Compiling"],
        result=Result(requeue_after=POLL),
    ),
    Case(
        "the Job is running: polled again",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: f.kube.put(jobs.JOBS, job_for()),
        kfp=["get_pipeline_by_name"],
        kube=["get", "patch_status"],
        state="Creating",
        reason="Compiling",
        result=Result(requeue_after=POLL),
    ),
    Case(
        "the Job ran longer than compileTimeout: deleted, Failed",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: (
            f.kube.put(jobs.JOBS, job_for()),
            f.clock.step(TIMEOUT),
        ),
        kfp=["get_pipeline_by_name"],
        kube=["get", "delete", "delete", "patch_status"],
        state="Failed",
        reason="CompileTimedOut",
        events=["CompileTimedOut"],
    ),
    Case(
        "the Job hit its deadline (the Job controller failed it): CompileTimedOut",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: f.kube.put(
            jobs.JOBS,
            job_for(conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]),
        ),
        kfp=["get_pipeline_by_name"],
        kube=["get", "delete", "delete", "patch_status"],
        state="Failed",
        reason="CompileTimedOut",
        events=["CompileTimedOut"],
    ),
    Case(
        "the Job completed: its ConfigMap's pipeline is uploaded, the Job and ConfigMap deleted",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: (
            f.kube.put(jobs.JOBS, job_for(**COMPLETE)),
            f.kube.put(CONFIGMAPS, output({jobs.OUTPUT_KEY: PENGUIN_SPEC})),
        ),
        kfp=["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"],
        kube=["get", "get", "delete", "delete", "patch_status"],
        state="Succeeded",
        events=["Uploaded"],
    ),
    Case(
        "a ConfigMap not written by the Job (another UID) is not trusted",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: (
            f.kube.put(jobs.JOBS, job_for(**COMPLETE)),
            f.kube.put(CONFIGMAPS, output({jobs.OUTPUT_KEY: PENGUIN_SPEC}, owner_uid="someone-else")),
        ),
        kfp=["get_pipeline_by_name"],
        kube=["get", "get", "delete", "patch_status"],
        state="Failed",
        reason="CompileFailed",
        events=["CompileFailed"],
    ),
    Case(
        "the function is not a pipeline: Failed with the compiler's reason; the Job stays for its logs",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: (
            f.kube.put(jobs.JOBS, job_for(**FAILED_JOB)),
            f.kube.put(
                CONFIGMAPS,
                output({jobs.ERROR_KEY: json.dumps({"reason": "NotAPipeline", "message": "a component"})}),
            ),
        ),
        kfp=["get_pipeline_by_name"],
        kube=["get", "get", "delete", "patch_status"],
        state="Failed",
        reason="NotAPipeline",
        events=["NotAPipeline"],
    ),
    Case(
        "the Job failed without output: CompileFailed pointing at its logs",
        pipeline(from_image(), finalizer=True),
        setup=lambda f: f.kube.put(jobs.JOBS, job_for(**FAILED_JOB)),
        kfp=["get_pipeline_by_name"],
        kube=["get", "get", "delete", "patch_status"],
        state="Failed",
        reason="CompileFailed",
        events=["CompileFailed"],
    ),
    Case(
        "a version that failed to compile is not compiled again",
        pipeline(from_image(), finalizer=True, status=failed(IMAGE_VERSION, "ModuleNotFound")),
        result=Result(),  # only a change of the spec mends it
    ),
    Case(
        "a name conflict is looked at again (someone may delete their pipeline)",
        pipeline(compiled(), finalizer=True, status=failed(PENGUIN_VERSION, "PipelineNameConflict")),
        setup=lambda f: f.kfp_resources.add_pipeline("penguin", "by hand"),
        kfp=["get_pipeline_by_name"],
        kube=["patch_status"],  # the test's status has another message
        state="Failed",
        reason="PipelineNameConflict",
        events=["PipelineNameConflict"],
        result=Result(requeue_after=RECHECK),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reconcile(case: Case) -> None:
    f = ResourceFixture()
    case.setup(f)
    f.add_pipelines(case.obj)
    f.kube.put(PIPELINES, case.obj)

    result = reconciler(
        f, naming=case.naming, compiler="" if "no compiler" in case.name else "op:1"
    ).reconcile(KEY)

    assert f.kfp_resources.verbs() == case.kfp
    assert f.kube.verbs() == case.kube
    assert f.recorder.reasons() == case.events
    assert result == case.result
    patches = f.kube.status_patches()
    if case.state is None:
        assert patches == []
        return
    status = written(case.obj, patches)
    assert status["synchronizationState"] == case.state
    if case.reason:
        [synchronized] = [c for c in status["conditions"] if c["type"] == "Synchronized"]
        assert synchronized["reason"] == case.reason
        [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
        assert ready["status"] == ("True" if case.state == "Succeeded" else "False")


def test_a_new_pipeline_is_marked_as_the_operators_and_named_by_the_setting() -> None:
    f = ResourceFixture()
    obj = pipeline(compiled(), namespace="team-a")
    f.add_pipelines(obj)

    reconciler(f, naming=NAMES_NAMESPACED).reconcile(ObjectKey("team-a", "penguin"))

    [(pipeline_id, created)] = f.kfp_resources.pipelines.items()
    assert created["name"] == "team-a-penguin"
    assert owner_of(created["description"]) == Owner("Pipeline", "team-a", "penguin", "uid-penguin")
    [version] = f.kfp_resources.versions[pipeline_id]
    assert version["name"] == PENGUIN_VERSION
    assert owner_of(version["description"]).spec_digest == PENGUIN.digest
    assert f.kfp_resources.contents[version["pipeline_version_id"]] == PENGUIN_SPEC
    status = f.kube.status_patches()[-1]["status"]
    assert status["providerId"] == f"kfp:{pipeline_id}"
    assert status["kfpName"] == "team-a-penguin"
    assert status["version"] == PENGUIN_VERSION


def test_an_explicit_compiled_version_names_the_kfp_version() -> None:
    f = ResourceFixture()
    f.add_pipelines(pipeline(compiled(version="v1-abcdef")))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.version_names(next(iter(f.kfp_resources.pipelines))) == ["v1-abcdef"]


def test_the_compile_job() -> None:
    f = ResourceFixture()
    f.add_pipelines(pipeline(from_image(), finalizer=True))

    reconciler(f).reconcile(KEY)

    [job] = [r.body for r in f.kube.requests if r.verb == "create"]
    assert job["metadata"]["name"].startswith("penguin-compile-")
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-penguin"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == TIMEOUT
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "compiler"
    [init] = pod["initContainers"]
    assert init["image"] == "op:1"
    assert init["command"] == ["python", "-m", "kfp_operator.compiler", "install", "/kfp-compiler"]
    [main] = pod["containers"]
    assert main["image"] == "ghcr.io/team/pipelines:v1"
    assert main["command"] == ["python3", "/kfp-compiler/compile.py"]
    assert "--framework=kfp" in main["args"]
    assert "--function=pipelines.penguin" in main["args"]
    assert f"--output={job['metadata']['name']}" in main["args"]
    env = {e["name"]: e for e in main["env"]}
    assert env["RUNS"]["value"] == "3"
    assert env[jobs.JOB_UID_ENV]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/controller-uid']"
    )
    status = f.kube.status_patches()[-1]["status"]
    assert (
        status["version"] == IMAGE_VERSION and job["metadata"]["name"] in status["conditions"][0]["message"]
    )


def test_a_spec_change_while_compiling_deletes_the_earlier_versions_job() -> None:
    f = ResourceFixture()
    compiling = {"synchronizationState": "Creating", "version": "v0-aaaaaa", "kfpName": "penguin"}
    f.add_pipelines(pipeline(from_image(), finalizer=True, status=compiling))

    reconciler(f).reconcile(KEY)

    view = PipelineView(pipeline(from_image()))
    deleted = [r.target for r in f.kube.requests if r.verb == "delete"]
    assert deleted[:2] == [
        f"jobs/ns/{jobs.job_name(view, 'v0-aaaaaa')}",
        f"configmaps/ns/{jobs.job_name(view, 'v0-aaaaaa')}",
    ]


@pytest.mark.parametrize(
    ("verb", "error", "reason"),
    [
        (
            "upload_pipeline_version",
            KfpError("upload_pipeline_version", 503, "HTTP 503: down"),
            "KfpUnavailable",
        ),
        (
            "get_pipeline_by_name",
            KfpError(
                "get_pipeline_by_name", None, "ConnectionRefusedError: [Errno 111]", failure="cannot connect"
            ),
            "KfpUnavailable",
        ),
        # Multi-user KFP without kubeflow-pipelines-edit for the operator in the namespace.
        (
            "get_pipeline_by_name",
            KfpError("get_pipeline_by_name", 403, "HTTP 403: not authorized"),
            "KfpRequestFailed",
        ),
        (
            "upload_pipeline_version",
            KfpError("upload_pipeline_version", 403, "HTTP 403: no"),
            "KfpRequestFailed",
        ),
        ("create_pipeline", KfpError("create_pipeline", 401, "HTTP 401: no identity"), "KfpRequestFailed"),
    ],
)
def test_a_kfp_call_that_fails_is_said_on_the_pipeline_and_retried(
    verb: str, error: KfpError, reason: str
) -> None:
    f = ResourceFixture()
    obj = pipeline(compiled(), finalizer=True)
    f.add_pipelines(obj)
    f.kfp_resources.errors[verb] = [error, error]
    pipelines = reconciler(f)

    with pytest.raises(KfpError):  # the work queue retries it with backoff
        pipelines.reconcile(KEY)
    status = written(obj, f.kube.status_patches())
    assert waiting_on_kfp(status) == ("Creating", "Unknown", reason)
    assert (error.failure or error.message) in condition(status, "Synchronized")["message"]
    assert condition(status, "Ready")["status"] == "False"  # Runs wait for the version
    assert f.recorder.reasons() == [reason]

    f.add_pipelines(pipeline(compiled(), finalizer=True, status=status, resourceVersion="8"))
    fails_quietly_again(f, lambda: pipelines.reconcile(KEY))


# -- retention -------------------------------------------------------------------------------------


def test_retention_deletes_the_oldest_versions_nobody_uses() -> None:
    f = ResourceFixture()
    our_pipeline(f, "v1", "v2", "v3", "v4")
    f.kfp_resources.add_version("p-ours", "by-hand", "someone's")
    f.add_pipelines(pipeline(compiled(), finalizer=True, status=synced("v4")))
    f.add_runs(run(spec={"pipeline": "penguin:v2"}))  # a Run not completed yet uses v2

    reconciler(f, retention=2).reconcile(KEY)

    assert f.kfp_resources.version_names("p-ours") == ["v2", "v4", "by-hand", PENGUIN_VERSION]
    assert "VersionsDeleted" in f.recorder.reasons()


# -- deletion --------------------------------------------------------------------------------------


def deleted(status: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return pipeline(
        compiled(),
        finalizer=True,
        status=status if status is not None else synced(PENGUIN_VERSION),
        deletionTimestamp=format_time(NOW),
        **kwargs,
    )


def test_deletion_removes_its_versions_and_its_pipeline() -> None:
    f = ResourceFixture()
    our_pipeline(f, "v1", PENGUIN_VERSION)
    f.add_pipelines(deleted())

    assert reconciler(f).reconcile(KEY) == Result()

    assert f.kfp_resources.pipelines == {}
    assert f.kfp_resources.verbs().count("delete_pipeline_version") == 2
    assert f.kube.verbs()[-1] == "remove_finalizer"
    assert f.recorder.reasons() == ["DeletedFromKfp"]


def test_deletion_keeps_a_pipeline_with_versions_the_operator_did_not_upload() -> None:
    f = ResourceFixture()
    our_pipeline(f, PENGUIN_VERSION)
    f.kfp_resources.add_version("p-ours", "by-hand", "someone's")
    f.add_pipelines(deleted())

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.version_names("p-ours") == ["by-hand"]
    assert "delete_pipeline" not in f.kfp_resources.verbs()
    assert f.recorder.reasons() == ["KfpPipelineKept"]
    assert f.kube.verbs()[-1] == "remove_finalizer"


def test_deletion_never_touches_a_pipeline_it_did_not_create() -> None:
    f = ResourceFixture()
    f.kfp_resources.add_pipeline("penguin", "by hand", pipeline_id="p-theirs")
    f.kfp_resources.add_version("p-theirs", PENGUIN_VERSION, "theirs")
    f.add_pipelines(deleted(status=failed(PENGUIN_VERSION, "PipelineNameConflict")))

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.verbs() == ["get_pipeline_by_name"]
    assert f.kfp_resources.version_names("p-theirs") == [PENGUIN_VERSION]
    assert f.kube.verbs()[-1] == "remove_finalizer"


def test_deletion_of_an_adopted_pipeline_removes_only_the_versions_it_uploaded() -> None:
    f = ResourceFixture()
    f.kfp_resources.add_pipeline("penguin", "by hand", pipeline_id="p-theirs")
    f.kfp_resources.add_version("p-theirs", "theirs", "by hand")
    f.kfp_resources.add_version("p-theirs", PENGUIN_VERSION, OWNER.describe())
    f.add_pipelines(
        deleted(
            status=synced(PENGUIN_VERSION, pipeline_id="p-theirs"), annotations={ADOPT_ANNOTATION: "true"}
        )
    )

    reconciler(f).reconcile(KEY)

    assert f.kfp_resources.version_names("p-theirs") == ["theirs"]
    assert "p-theirs" in f.kfp_resources.pipelines


def test_deletion_waits_for_kfp_then_gives_up_after_the_deletion_timeout() -> None:
    f = ResourceFixture()
    our_pipeline(f, PENGUIN_VERSION)
    f.add_pipelines(deleted())
    f.kfp_resources.errors["get_pipeline"] = [KfpError("get_pipeline", None, "refused")] * 2

    pipelines = reconciler(f)
    with pytest.raises(KfpError):
        pipelines.reconcile(KEY)
    assert f.kube.status_patches()[-1]["status"]["synchronizationState"] == "Deleting"
    assert "remove_finalizer" not in f.kube.verbs()

    f.clock.step(timedelta(minutes=11).total_seconds())
    pipelines.reconcile(KEY)
    assert f.kube.verbs()[-1] == "remove_finalizer"
    assert f.recorder.reasons() == ["DeletionTimedOut"]


def test_a_pipeline_deleted_before_anything_was_made_has_no_finalizer_to_remove() -> None:
    f = ResourceFixture()
    obj = pipeline(from_image("untagged"), deletionTimestamp=format_time(NOW))
    f.add_pipelines(obj)

    assert reconciler(f).reconcile(KEY) == Result()
    assert f.kube.requests == [] and f.kfp_resources.requests == []


def test_the_finalizer_is_the_operators() -> None:
    assert FINALIZER == "finalizer.pipelines.kubeflow.org"


# ---- deleted in KFP behind the operator's back -----------------------------------------------------


def converged_pipeline(f: ResourceFixture) -> PipelineReconciler:
    our_pipeline(f, PENGUIN_VERSION)
    obj = pipeline(compiled(), finalizer=True, status=synced(PENGUIN_VERSION))
    f.add_pipelines(obj)
    f.kube.put(PIPELINES, obj)
    return reconciler(f)


def test_a_converged_pipeline_checks_once_per_interval_that_its_version_is_in_kfp() -> None:
    f = ResourceFixture()
    r = converged_pipeline(f)

    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE)
    assert f.kfp_resources.verbs() == [], "the first sight (a restart, say) asks KFP nothing"
    f.clock.step(PRESENCE / 2)
    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE / 2)
    f.clock.step(PRESENCE / 2)
    assert r.reconcile(KEY) == Result(requeue_after=PRESENCE)
    assert f.kfp_resources.verbs() == ["get_pipeline", "find_pipeline_version"]
    assert f.recorder.reasons() == [] and f.kube.status_patches() == []


@pytest.mark.parametrize(
    ("deleted", "made_again"),
    [
        ("version", ["get_pipeline_by_name", "find_pipeline_version", "upload_pipeline_version"]),
        ("pipeline", ["get_pipeline_by_name", "create_pipeline", "upload_pipeline_version"]),
    ],
)
def test_a_pipeline_or_version_deleted_in_kfp_is_uploaded_again(deleted: str, made_again: list[str]) -> None:
    f = ResourceFixture()
    r = converged_pipeline(f)
    r.reconcile(KEY)
    if deleted == "version":
        f.kfp_resources.versions["p-ours"] = []
    else:
        f.kfp_resources.pipelines.clear()
        f.kfp_resources.versions.clear()
    f.clock.step(PRESENCE)

    result = r.reconcile(KEY)

    checks = ["get_pipeline", "find_pipeline_version"] if deleted == "version" else ["get_pipeline"]
    assert f.kfp_resources.verbs() == checks + made_again
    assert f.recorder.reasons() == ["DeletedInKfp", "Uploaded"]
    assert result == Result(requeue_after=PRESENCE)
    [kfp_pipeline] = f.kfp_resources.pipelines.values()
    assert f.kfp_resources.version_names(kfp_pipeline["pipeline_id"]) == [PENGUIN_VERSION]
