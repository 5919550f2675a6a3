"""The KFP client's pipeline, version and experiment calls, against the KFP emulator (which answers
as the real server does: uploads, 404s, refusals)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.examples import PIPELINES_DIR
from kfp_devstack.waiting import wait_until
from kfp_operator.clients.kfp import KfpClient, KfpMetrics
from kfp_operator.settings import KfpConfig
from reconcilers.clients import KfpError

PENGUIN = (PIPELINES_DIR / "penguin_pipeline.yaml").read_text()


def next_second() -> None:
    """KFP orders versions by creation time in whole seconds (ties by id): one made in a later
    second is reliably later."""
    start = int(time.time())
    wait_until(lambda: int(time.time()) > start, timeout=2, interval=0.02, message="the next second")


@pytest.fixture
def kfp(tmp_path: Path) -> Iterator[KfpClient]:
    with Emulator(EmulatorConfig(state_dir=tmp_path / "kfp")) as emulator:
        yield KfpClient(KfpConfig(endpoint=emulator.url), KfpMetrics(CollectorRegistry()))


def test_pipelines_and_versions(kfp: KfpClient) -> None:
    created = kfp.create_pipeline(name="team-a-penguin", description="marked", namespace="team-a")
    pipeline_id = created["pipeline_id"]
    assert kfp.get_pipeline_by_name("team-a-penguin", "team-a")["description"] == "marked"
    assert list(kfp.all_pipeline_versions(pipeline_id)) == []  # created without a version

    kfp.upload_pipeline_version(pipeline_id, name="v1", description="mine", content=PENGUIN)
    next_second()
    kfp.upload_pipeline_version(pipeline_id, name="v2", description="mine too", content=PENGUIN)
    assert kfp.find_pipeline_version(pipeline_id, "v2")["description"] == "mine too"
    assert kfp.find_pipeline_version(pipeline_id, "v3") is None
    versions = list(kfp.all_pipeline_versions(pipeline_id))
    assert [v["name"] for v in versions] == ["v1", "v2"]

    with pytest.raises(KfpError) as refused:
        kfp.upload_pipeline_version(pipeline_id, name="bad", description="", content="kind: Workflow\n")
    assert refused.value.is_refusal
    with pytest.raises(KfpError) as taken:
        kfp.upload_pipeline_version(pipeline_id, name="v1", description="", content=PENGUIN)
    assert taken.value.status == 409

    for version in versions:
        kfp.delete_pipeline_version(pipeline_id, version["pipeline_version_id"])
    kfp.delete_pipeline_version(pipeline_id, versions[0]["pipeline_version_id"])  # gone: nothing to do
    kfp.delete_pipeline(pipeline_id)
    kfp.delete_pipeline(pipeline_id)
    assert kfp.get_pipeline(pipeline_id) is None


def test_experiments(kfp: KfpClient) -> None:
    created = kfp.create_experiment(display_name="penguins", description="runs", namespace="team-a")
    experiment_id = created["experiment_id"]
    assert kfp.find_experiment("penguins", "team-a")["experiment_id"] == experiment_id
    assert kfp.find_experiment("nope", "team-a") is None
    assert kfp.experiment_has_runs(experiment_id) is False

    kfp.archive_experiment(experiment_id)
    assert kfp.get_experiment(experiment_id)["storage_state"] == "ARCHIVED"
    kfp.unarchive_experiment(experiment_id)
    assert kfp.get_experiment(experiment_id)["storage_state"] == "AVAILABLE"

    kfp.delete_experiment(experiment_id)
    kfp.delete_experiment(experiment_id)
    assert kfp.get_experiment(experiment_id) is None
