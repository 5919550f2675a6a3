"""Typed, read-only views of Run and RunConfiguration objects as the API server returns them.

Reconcilers read raw dicts from the informer cache; these views give the fields
names and types without copying the object, and hold the few facts derived from
a spec (the referenced RunConfigurations, the owning one, the version hash).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.api.view import ObjectView


@dataclass(frozen=True)
class PipelineRef:
    """``spec.pipeline``: a pipeline name and an optional version name."""

    name: str
    version: str | None

    @classmethod
    def parse(cls, text: str) -> PipelineRef:
        # The CRD pattern guarantees at most one colon and non-empty parts.
        name, _, version = text.partition(":")
        return cls(name=name, version=version or None)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version else self.name


@dataclass(frozen=True)
class RunConfigurationRef:
    """``valueFrom.runConfigurationRef``: ``name`` is ``name`` or ``namespace/name``, as written."""

    name: str
    output_artifact: str

    def target(self, namespace: str) -> tuple[str, str]:
        """The referenced RunConfiguration's (namespace, name); a bare name is in ``namespace``."""
        return reference_target(self.name, namespace)


def reference_target(reference: str, namespace: str) -> tuple[str, str]:
    """``name`` or ``namespace/name`` as (namespace, name), a bare name being in ``namespace``."""
    other, slash, name = reference.partition("/")
    return (other, name) if slash else (namespace, reference)


@dataclass(frozen=True)
class RuntimeParameter:
    name: str
    value: str | None
    value_from: RunConfigurationRef | None

    def to_dict(self) -> dict[str, Any]:
        parameter: dict[str, Any] = {"name": self.name}
        if self.value is not None:
            parameter["value"] = self.value
        if self.value_from is not None:
            parameter["valueFrom"] = {
                "runConfigurationRef": {
                    "name": self.value_from.name,
                    "outputArtifact": self.value_from.output_artifact,
                }
            }
        return parameter


@dataclass(frozen=True)
class OutputArtifactSpec:
    name: str
    path: str


@dataclass(frozen=True)
class RunSpec:
    pipeline: PipelineRef
    experiment_name: str | None
    runtime_parameters: tuple[RuntimeParameter, ...]
    artifacts: tuple[OutputArtifactSpec, ...]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> RunSpec:
        return cls(
            pipeline=PipelineRef.parse(spec.get("pipeline", "")),
            experiment_name=spec.get("experimentName") or None,
            runtime_parameters=tuple(_parameter(p) for p in spec.get("runtimeParameters") or ()),
            artifacts=tuple(
                OutputArtifactSpec(name=a["name"], path=a["path"]) for a in spec.get("artifacts") or ()
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as the API serves it (the inverse of :meth:`from_dict`)."""
        spec: dict[str, Any] = {"pipeline": str(self.pipeline)}
        if self.experiment_name:
            spec["experimentName"] = self.experiment_name
        if self.runtime_parameters:
            spec["runtimeParameters"] = [p.to_dict() for p in self.runtime_parameters]
        if self.artifacts:
            spec["artifacts"] = [{"name": a.name, "path": a.path} for a in self.artifacts]
        return spec

    def referenced_run_configurations(self) -> frozenset[str]:
        """The references to RunConfigurations, as written (``name`` or ``namespace/name``)."""
        return frozenset(p.value_from.name for p in self.runtime_parameters if p.value_from is not None)


def _parameter(raw: Mapping[str, Any]) -> RuntimeParameter:
    ref = (raw.get("valueFrom") or {}).get("runConfigurationRef")
    return RuntimeParameter(
        name=raw["name"],
        value=raw.get("value"),
        value_from=RunConfigurationRef(name=ref["name"], output_artifact=ref["outputArtifact"])
        if ref
        else None,
    )


@dataclass(frozen=True)
class Artifact:
    """A resolved artifact: ``{name, location}`` in status, events and RunConfiguration status."""

    name: str
    location: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "location": self.location}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Artifact:
        return cls(name=raw["name"], location=raw["location"])


class RunView(ObjectView):
    """A Run object as read from the cache. Never mutates the underlying dict."""

    @cached_property
    def spec(self) -> RunSpec:
        # Parsed on first use: index functions and metrics look at metadata and status only.
        return RunSpec.from_dict(self.obj.get("spec") or {})

    @property
    def namespaced_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def provider_id(self) -> str | None:
        return self.status.get("providerId") or None

    @property
    def kfp_run_id(self) -> str | None:
        """The KFP run id from ``status.providerId`` (``<provider>:<id>``, or a bare id)."""
        provider_id = self.provider_id
        return provider_id.rpartition(":")[2] if provider_id else None

    @property
    def completion_state(self) -> str | None:
        return self.status.get("completionState") or None

    @property
    def is_completed(self) -> bool:
        return self.completion_state is not None

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def labels(self) -> Mapping[str, str]:
        return self.metadata.get("labels") or {}

    def owning_run_configuration(self) -> str | None:
        """The RunConfiguration this Run belongs to: its label, else a controller ownerReference."""
        label = self.labels.get(RUN_CONFIGURATION_LABEL)
        if label:
            return label
        for owner in self.metadata.get("ownerReferences") or ():
            if owner.get("controller") and owner.get("kind") == "RunConfiguration":
                return str(owner["name"])
        return None

    def artifacts(self) -> tuple[Artifact, ...]:
        return tuple(Artifact.from_json(a) for a in self.status.get("artifacts") or ())


def spec_version(spec: RunSpec) -> str:
    """The reference operator's ``RunSpec.ComputeVersion``: a short hash of a run specification.

    A RunConfiguration's ``runSpec`` trigger compares it to see whether ``spec.run`` changed.
    """
    return _hash(spec, None)[:6]


def run_version(spec: RunSpec, observed_pipeline_version: str) -> str:
    """The reference operator's ``Run.ComputeVersion``: ``status.version`` of a Run.

    The spec hash with the pipeline version the Run was submitted with, so the same Run shows
    the same version in both operators.
    """
    return _hash(spec, observed_pipeline_version)[:6]


def _hash(spec: RunSpec, observed_pipeline_version: str | None) -> str:
    # As the reference's ObjectHasher: SHA-1, a zero byte after every string field and after
    # every list; lists sorted as it sorts them; artifact paths in their canonical form.
    hasher = hashlib.sha1(usedforsecurity=False)

    def field(value: str) -> None:
        hasher.update(value.encode())
        hasher.update(b"\x00")

    def end_list() -> None:
        hasher.update(b"\x00")

    field(str(spec.pipeline))
    field(spec.experiment_name or "")
    for parameter in sorted(spec.runtime_parameters, key=_parameter_sort_key):
        field(parameter.name)
        field(parameter.value or "")
        if parameter.value_from is not None:
            field(parameter.value_from.name)
            field(parameter.value_from.output_artifact)
    end_list()
    artifacts = [(a.name, canonical_artifact_path(a.path)) for a in spec.artifacts]
    for name, path in sorted(artifacts):
        field(name)
        field(path)
    end_list()
    if observed_pipeline_version is not None:
        field(observed_pipeline_version)
    return hasher.hexdigest()


# The CRD's pattern for artifact paths (the API server has checked every path against it).
_ARTIFACT_PATH = re.compile(r"([^\[\]:]+):([^\[\]:]+)(?::([0-9]*))?(?:\[([^\[\]:]+)\])?")


def canonical_artifact_path(path: str) -> str:
    """``COMPONENT:OUTPUT:INDEX[FILTER]`` with the index always written, as the reference renders it.

    ``Pusher:pushed_model[pushed == 1]`` becomes ``Pusher:pushed_model:0[pushed == 1]``; the
    filter is kept as written. A path that does not match the pattern is returned unchanged.
    """
    match = _ARTIFACT_PATH.fullmatch(path)
    if match is None:
        return path
    component, output, index, filter_text = match.groups()
    canonical = f"{component}:{output}:{int(index) if index else 0}"
    return f"{canonical}[{filter_text}]" if filter_text is not None else canonical


def _parameter_sort_key(parameter: RuntimeParameter) -> tuple[str, str, bool, str, str]:
    ref = parameter.value_from
    return (
        parameter.name,
        parameter.value or "",
        ref is not None,
        ref.name if ref else "",
        ref.output_artifact if ref else "",
    )
