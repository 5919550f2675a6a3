"""The compile Job: its name, its state, and what it hands back (and what is not trusted)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kfp_operator import compiler
from reconcilers.api.pipeline import PipelineView
from reconcilers.pipeline import job as jobs
from tests.support.resources import from_image, pipeline

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
JOB = {"metadata": {"uid": "job-1", "creationTimestamp": "2026-01-02T03:00:00Z"}, "status": {}}


def config_map(data: dict[str, str], uid: str = "job-1", kind: str = "Job") -> dict:
    return {"metadata": {"ownerReferences": [{"kind": kind, "uid": uid, "name": "x"}]}, "data": data}


def test_job_names_are_stable_short_and_per_version_and_pipeline_uid() -> None:
    view = PipelineView(pipeline(from_image(), name="a" * 63))
    name = jobs.job_name(view, "v1-abcdef")
    assert name == jobs.job_name(view, "v1-abcdef")
    assert len(name) <= 63 and name.startswith("a" * 40 + "-compile-")
    assert name != jobs.job_name(view, "v2-abcdef")
    other = PipelineView(pipeline(from_image(), name="a" * 63, uid="another"))
    assert name != jobs.job_name(other, "v1-abcdef")


def test_the_compiler_script_and_the_operator_agree_on_the_hand_over() -> None:
    assert (compiler.OUTPUT_KEY, compiler.ERROR_KEY) == (jobs.OUTPUT_KEY, jobs.ERROR_KEY)
    assert (compiler.JOB_UID_ENV, compiler.NAMESPACE_ENV) == (jobs.JOB_UID_ENV, jobs.NAMESPACE_ENV)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ({}, jobs.Running(datetime(2026, 1, 2, 3, 0, tzinfo=UTC))),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, jobs.Finished(True, "Complete", "")),
        (
            {
                "conditions": [
                    {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "m"}
                ]
            },
            jobs.Finished(False, "DeadlineExceeded", "m"),
        ),
        (
            {"conditions": [{"type": "Failed", "status": "False"}]},
            jobs.Running(datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        ),
    ],
)
def test_job_state(status: dict, state: jobs.JobState) -> None:
    assert jobs.job_state({**JOB, "status": status}) == state


def test_timed_out() -> None:
    running = jobs.job_state(JOB)
    assert not jobs.timed_out(JOB, running, NOW, timeout_seconds=600)
    assert jobs.timed_out(JOB, running, NOW + timedelta(minutes=6), timeout_seconds=600)
    deadline = jobs.Finished(False, "DeadlineExceeded", "")
    assert jobs.timed_out(JOB, deadline, NOW, timeout_seconds=600)
    assert not jobs.timed_out(JOB, jobs.Finished(False, "BackoffLimitExceeded", ""), NOW, 600)


def test_read_output() -> None:
    assert jobs.read_output(JOB, None) is None
    assert jobs.read_output(JOB, config_map({"pipeline.yaml": "spec"})) == jobs.CompiledOutput("spec")
    # Only a ConfigMap owned by this very Job (its UID) is trusted.
    assert jobs.read_output(JOB, config_map({"pipeline.yaml": "spec"}, uid="other")) is None
    assert jobs.read_output(JOB, config_map({"pipeline.yaml": "spec"}, kind="Pod")) is None
    error = json.dumps(
        {"reason": "ModuleNotFound", "message": "no module named 'x'", "output": "Traceback..."}
    )
    assert jobs.read_output(JOB, config_map({"error": error})) == jobs.CompileError(
        "ModuleNotFound", "no module named 'x'; output:\nTraceback..."
    )
    odd = json.dumps({"reason": "Exploded", "message": "m"})
    assert jobs.read_output(JOB, config_map({"error": odd})) == jobs.CompileError("CompileFailed", "m")
    assert jobs.read_output(JOB, config_map({"error": "not json"})) == jobs.CompileError(
        "CompileFailed", "not json"
    )
    assert jobs.read_output(JOB, config_map({})) is None
