"""The documented CRD upgrade, done for real: ``helm install``, new CRDs, ``helm upgrade``.

Helm installs a chart's ``crds/`` on the first install only and never changes them afterwards, so
docs/installation.md has the CRDs applied with ``kubectl apply --server-side --force-conflicts``
before ``helm upgrade``. This test installs the chart with the real helm into the test API server,
then upgrades to a chart version whose Run CRD has a new field, exactly as documented, and checks
that the field is served, that Helm left the CRDs alone, and why ``--force-conflicts`` is needed.

The chart copies' CRDs live in an API group of their own (same CRDs, renamed group), so that this
upgrade does not change the session's shared ``pipelines.kubeflow.org`` CRDs.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.waiting import wait_until
from tests.chart.chartlib import CHART, KubectlIn, helm

GROUP = "pipelines.kubeflow.org"
NEW_FIELD = "upgradeProbe"

pytestmark = pytest.mark.timeout(240)


def chart_version(directory: Path, group: str, version: str, *, new_field: bool) -> Path:
    """A copy of the chart at ``version`` whose CRDs are in ``group``, the Run CRD with
    ``spec.upgradeProbe`` when ``new_field``."""
    shutil.copytree(CHART, directory)
    chart = yaml.safe_load((directory / "Chart.yaml").read_text())
    (directory / "Chart.yaml").write_text(yaml.safe_dump({**chart, "version": version}))
    for path in (directory / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text().replace(GROUP, group))
        if new_field and crd["spec"]["names"]["kind"] == "Run":
            for served in crd["spec"]["versions"]:
                spec = served["schema"]["openAPIV3Schema"]["properties"]["spec"]
                spec["properties"][NEW_FIELD] = {
                    "type": "string",
                    "description": "A field of the new version.",
                }
        path.write_text(yaml.safe_dump(crd, sort_keys=False))
    return directory


class Release:
    """A release of the chart, managed with the real helm against the test API server."""

    def __init__(self, control_plane: ControlPlane, namespace: str, helm_home: Path) -> None:
        self.namespace = namespace
        self.kubeconfig = str(control_plane.kubeconfig)
        self.env = {
            f"HELM_{kind}_HOME": str(helm_home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")
        }

    def helm(self, command: str, chart: Path) -> str:
        return helm(
            *(command, "kfp-operator", str(chart), "--namespace", self.namespace),
            *("--kubeconfig", self.kubeconfig, "--set", f"fullnameOverride={self.namespace}"),
            env=self.env,
        )


@pytest.fixture
def group() -> str:
    return f"t{uuid.uuid4().hex[:8]}.upgrade.test"


def run_schema(api: kubernetes.client.ApiextensionsV1Api, group: str) -> dict[str, Any]:
    crd = api.read_custom_resource_definition(f"runs.{group}")
    return crd.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties


def managers(api: kubernetes.client.ApiextensionsV1Api, name: str) -> set[str]:
    return {entry.manager for entry in api.read_custom_resource_definition(name).metadata.managed_fields}


def create_run(
    api_client: kubernetes.client.ApiClient, group: str, namespace: str, name: str
) -> dict[str, Any]:
    """Creates a Run with the new field, refused if the served schema does not know it."""
    return kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        group,
        "v1alpha5",
        namespace,
        "runs",
        {
            "apiVersion": f"{group}/v1alpha5",
            "kind": "Run",
            "metadata": {"name": name},
            "spec": {"pipeline": "penguin-pipeline", NEW_FIELD: "served"},
        },
        field_validation="Strict",
    )


def unknown_field_refused(call: Callable[[], Any]) -> bool:
    try:
        call()
    except kubernetes.client.ApiException as error:
        message = json.loads(error.body)["message"]
        return error.status == 400 and f'unknown field "spec.{NEW_FIELD}"' in message
    return False


def test_the_documented_upgrade_serves_the_new_crd_field(
    tmp_path: Path,
    group: str,
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    kubectl_in: KubectlIn,
    make_namespace: Callable[..., str],
) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    old = chart_version(tmp_path / "old" / "kfp-operator", group, "0.1.0", new_field=False)
    new = chart_version(tmp_path / "new" / "kfp-operator", group, "0.2.0", new_field=True)
    release = Release(control_plane, make_namespace("upgrade"), tmp_path / "helm")

    release.helm("install", old)
    assert "helm" in managers(extensions, f"runs.{group}")
    assert NEW_FIELD not in run_schema(extensions, group)
    assert unknown_field_refused(lambda: create_run(api_client, group, release.namespace, "before"))

    # Server-side apply refuses to take over fields Helm set: that is why the docs force it.
    refused = kubectl_in("", "apply", "--server-side", "-f", str(new / "crds"), check=False)
    assert refused.returncode != 0
    assert 'conflict with "helm"' in refused.stderr, refused.stderr

    # The documented procedure: the new CRDs first, then the release.
    kubectl_in("", "apply", "--server-side", "--force-conflicts", "-f", str(new / "crds"))
    release.helm("upgrade", new)

    assert NEW_FIELD in run_schema(extensions, group)  # helm upgrade left the applied CRDs alone
    run = wait_until(
        lambda: create_run(api_client, group, release.namespace, "after"),
        timeout=30,
        message="the API server to serve the new Run schema",
    )
    assert run["spec"][NEW_FIELD] == "served"
    history = helm(
        "history",
        "kfp-operator",
        "-n",
        release.namespace,
        "--kubeconfig",
        release.kubeconfig,
        env=release.env,
    )
    assert "0.2.0" in history.splitlines()[-1]


def test_helm_upgrade_alone_does_not_change_the_crds(
    tmp_path: Path,
    group: str,
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    make_namespace: Callable[..., str],
) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    old = chart_version(tmp_path / "old" / "kfp-operator", group, "0.1.0", new_field=False)
    new = chart_version(tmp_path / "new" / "kfp-operator", group, "0.2.0", new_field=True)
    release = Release(control_plane, make_namespace("upgrade"), tmp_path / "helm")

    release.helm("install", old)
    release.helm("upgrade", new)

    assert NEW_FIELD not in run_schema(extensions, group)
