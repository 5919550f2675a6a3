"""The chart applied to the real API server; its pod admitted under the restricted Pod Security Standard."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.chart.chartlib import Installed, KubectlIn


def test_every_rendered_object_exists_after_the_apply(installed: Installed, kubectl_in: KubectlIn) -> None:
    result = kubectl_in(installed.manifests, "get", "-f", "-", "-o", "name")

    # kubectl names objects <resource>[.<group>]/<name>; the resources here are the lower-case kinds.
    found = {f"{ref.split('/')[0].split('.')[0]}/{ref.split('/', 1)[1]}" for ref in result.stdout.split()}
    expected = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in installed.rendered.objects}
    assert found == expected


def pod_from_template(installed: Installed, name: str) -> dict[str, Any]:
    template = copy.deepcopy(installed.rendered.deployment["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": installed.namespace,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


def test_pod_from_the_deployment_template_is_admitted_as_restricted(
    installed: Installed, kubectl_in: KubectlIn
) -> None:
    pod = pod_from_template(installed, "from-template")

    result = kubectl_in(yaml.safe_dump(pod), "create", "-f", "-", check=False)

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_restricted_pod_security_is_enforced_in_that_namespace(
    installed: Installed, kubectl_in: KubectlIn
) -> None:
    pod = pod_from_template(installed, "privileged")
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True

    result = kubectl_in(yaml.safe_dump(pod), "create", "-f", "-", check=False)

    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in result.stderr
