"""Rendering the kfp-operator chart with the real helm binary, and reading what it renders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kfp_devstack import binaries
from kfp_operator import settings as operator_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHART = PROJECT_ROOT / "charts" / "kfp-operator"
DOCS = PROJECT_ROOT / "docs"
KUBE_VERSION = "1.36.0"

# Every optional feature on: what `helm template` must render and the API server must accept.
ALL_FEATURES: dict[str, Any] = {
    "replicaCount": 2,
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}, "alertLabels": {"team": "ml"}},
    "grafanaDashboard": {"enabled": True},
    "podDisruptionBudget": {"enabled": True},
    "metricsCertificate": {"secretName": "kfp-operator-metrics-tls"},
    "rbac": {"metricsReaders": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}]},
    "config": {
        "kfp": {"multiUser": True},
        "watchNamespaces": ["team-a", "team-b"],
        "events": {
            "nats": {"url": "nats://nats.nats:4222", "jetstream": True},
            "http": {"sinks": ["http://events.example.svc/ingest", "https://hooks.example.com/kfp"]},
        },
        "runCompletionTTL": "24h",
    },
}


# ``kubectl_in(manifests, *args, check=True)``: the built kubectl with manifests on stdin.
KubectlIn = Callable[..., subprocess.CompletedProcess[str]]


class HelmError(RuntimeError):
    """helm exited with an error; the message is its stderr."""


def helm(*args: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Runs the built helm and returns its stdout; raises :class:`HelmError` on failure. ``env``
    is added to the environment (for example helm's own directories, kept out of ``$HOME``)."""
    result = subprocess.run(
        [str(binaries.locate().helm), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env} if env else None,
    )
    if result.returncode != 0:
        raise HelmError(result.stderr.strip() or result.stdout.strip())
    return result.stdout


def render_text(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "kfp-operator",
    namespace: str = "kfp-operator",
    include_crds: bool = False,
) -> str:
    """``helm template`` output for ``values`` (given on stdin, as ``--values -``)."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    args += ["--values", "-"]
    if include_crds:
        args.append("--include-crds")
    return helm(*args, stdin=yaml.safe_dump(dict(values or {})))


def lint(values: Mapping[str, Any] | None = None) -> str:
    """``helm lint --strict`` output for ``values``; raises :class:`HelmError` when it fails."""
    return helm(
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--values",
        "-",
        stdin=yaml.safe_dump(dict(values or {})),
    )


@dataclass
class Rendered:
    """The objects a chart rendering produced."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod_spec["containers"]
        return container

    @property
    def config(self) -> dict[str, Any]:
        """The operator configuration file as the ConfigMap holds it."""
        config_map = self.one("ConfigMap", self.deployment["metadata"]["name"])
        return yaml.safe_load(config_map["data"]["config.yaml"])

    def env(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.container.get("env", [])}

    def volume(self, name: str) -> dict[str, Any] | None:
        return next((v for v in self.pod_spec.get("volumes", []) if v["name"] == name), None)

    def mount(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.container.get("volumeMounts", []) if m["name"] == name), None)


@dataclass(frozen=True)
class Installed:
    """A release of the chart applied to the API server."""

    namespace: str
    manifests: str
    rendered: Rendered

    @property
    def service_account(self) -> str:
        return self.rendered.pod_spec["serviceAccountName"]


def parse(text: str) -> Rendered:
    return Rendered([doc for doc in yaml.safe_load_all(text) if doc])


def render(values: Mapping[str, Any] | None = None, **kwargs: Any) -> Rendered:
    return parse(render_text(values, **kwargs))


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merges value layers (later wins), as helm merges --values files."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def config_keys() -> list[str]:
    """The operator's configuration keys, dotted, in declaration order."""
    return [spec.key for spec in operator_config.KEYS]


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def leaf_paths(schema: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Dotted paths of the values the schema describes one by one (objects with properties recurse)."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if sub.get("type") == "object" and "properties" in sub:
            yield from leaf_paths(sub, path + ".")
        else:
            yield path


def section_paths(schema: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Dotted paths of every value and section the schema names."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path
        if sub.get("type") == "object" and "properties" in sub:
            yield from section_paths(sub, path + ".")
