"""The chart as a dependency of an umbrella chart: Helm's ``global`` and a parent's ``enabled``.

A parent chart passes its ``global`` values to every subchart and, with a dependency
``condition: kfp-operator.enabled``, the ``enabled`` switch too; the values schema must accept both
while still refusing every other unknown key. The umbrella here is a real chart depending on this
one through a ``file://`` repository, built with ``helm dependency build`` as a platform team would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartlib import CHART, KUBE_VERSION, HelmError, helm, parse

PARENT_VALUES: dict[str, Any] = {
    "global": {"imageRegistry": "registry.example.com", "imagePullSecrets": ["regcred"]},
    "kfp-operator": {
        "enabled": True,
        "replicaCount": 2,
        "config": {"kfp": {"endpoint": "http://ml-pipeline.kubeflow:8888"}},
    },
}


class Umbrella:
    """A parent chart in ``directory`` that depends on this chart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # helm's cache and configuration stay in the test's directory, not in $HOME.
        self.env = {
            f"HELM_{kind}_HOME": str(directory.parent / f"helm-{kind.lower()}")
            for kind in ("CACHE", "CONFIG", "DATA")
        }
        directory.mkdir()
        chart = {
            "apiVersion": "v2",
            "name": "ml-platform",
            "version": "1.0.0",
            "dependencies": [
                {
                    "name": "kfp-operator",
                    "version": yaml.safe_load((CHART / "Chart.yaml").read_text())["version"],
                    "repository": f"file://{CHART}",
                    "condition": "kfp-operator.enabled",
                }
            ],
        }
        (directory / "Chart.yaml").write_text(yaml.safe_dump(chart))
        (directory / "values.yaml").write_text(yaml.safe_dump(PARENT_VALUES))
        helm("dependency", "build", str(directory), env=self.env)

    def template(self, *args: str) -> str:
        chart = str(self.directory)
        return helm(
            "template",
            "platform",
            chart,
            "--namespace",
            "ml",
            "--kube-version",
            KUBE_VERSION,
            *args,
            env=self.env,
        )

    def lint(self, *args: str) -> str:
        return helm(
            "lint", "--strict", str(self.directory), "--kube-version", KUBE_VERSION, *args, env=self.env
        )


@pytest.fixture(scope="module")
def umbrella(tmp_path_factory: pytest.TempPathFactory) -> Umbrella:
    return Umbrella(tmp_path_factory.mktemp("subchart") / "ml-platform")


def test_dependency_build_packages_this_chart(umbrella: Umbrella) -> None:
    (archive,) = (umbrella.directory / "charts").iterdir()

    assert archive.name.startswith("kfp-operator-") and archive.name.endswith(".tgz")


def test_the_umbrella_renders_the_operator_with_globals_and_the_switch(umbrella: Umbrella) -> None:
    rendered = parse(umbrella.template())

    assert rendered.deployment["metadata"]["name"] == "platform-kfp-operator"
    assert rendered.deployment["spec"]["replicas"] == 2
    assert rendered.deployment["metadata"]["namespace"] == "ml"


def test_the_umbrella_lints_clean(umbrella: Umbrella) -> None:
    output = umbrella.lint()

    assert "0 chart(s) failed" in output
    assert "[ERROR]" not in output and "[WARNING]" not in output, output


def test_the_parent_switch_leaves_the_operator_out(umbrella: Umbrella) -> None:
    assert "Deployment" not in parse(umbrella.template("--set", "kfp-operator.enabled=false")).kinds()


def test_a_typo_in_the_subchart_values_is_still_refused(umbrella: Umbrella) -> None:
    with pytest.raises(HelmError, match="additional properties 'replicas' not allowed"):
        umbrella.template("--set", "kfp-operator.replicas=2")


def test_the_chart_alone_accepts_globals_too() -> None:
    assert parse(
        helm("template", "kfp-operator", str(CHART), "--set", "global.imageRegistry=r.example")
    ).deployment
