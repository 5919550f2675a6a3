"""Resolving a Run before submission: what to run, where, and with which parameters.

``resolve`` is the decision: given the Run's spec, the RunConfigurations it
references (from the cache) and a catalog of KFP objects, it says either exactly
what to submit, or why the Run has to wait, or why it can never be submitted.
The catalog is the only I/O and is passed in, so the decision is tested with an
in-memory catalog. Checks that need no KFP call come first: a Run waiting for a
RunConfiguration costs KFP nothing.

A pipeline or experiment named by the spec may be declared as a Pipeline or Experiment resource
in the Run's namespace (the caller passes it from the cache): then its KFP object is used by id,
whatever name ``kfpNames`` gave it in KFP. Without a version, the Pipeline's ``status.version`` is
used once it is ``Succeeded``; until then the Run waits (``PipelineNotReady``), while a
RunConfiguration keeps the version it resolved last (``previous_version``). Without such a
resource, names are looked up in KFP as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconcilers.api.experiment import ExperimentView
from reconcilers.api.pipeline import PipelineView
from reconcilers.api.run import RunSpec, reference_target
from reconcilers.artifacts.path import InvalidArtifactPath, parse_artifact_path
from reconcilers.run.parameters import (
    ARTIFACT_NOT_AVAILABLE,
    RUN_CONFIGURATION_NOT_FOUND,
    InvalidParameterValue,
    convert_values,
    declared_parameter_types,
    dependency_snapshot,
    resolve_values,
)

# Reasons of the DependenciesResolved condition while the Run waits, or when it cannot run.
PIPELINE_NOT_FOUND = "PipelineNotFound"
PIPELINE_VERSION_NOT_FOUND = "PipelineVersionNotFound"
EXPERIMENT_NOT_FOUND = "ExperimentNotFound"
PIPELINE_NOT_READY = "PipelineNotReady"
EXPERIMENT_NOT_READY = "ExperimentNotReady"
INVALID_ARTIFACT_FILTER = "InvalidArtifactFilter"
INVALID_ARTIFACT_PATH = "InvalidArtifactPath"
INVALID_PARAMETER = "InvalidParameter"
REFERENCE_NOT_ALLOWED = "RunConfigurationReferenceNotAllowed"
UNRESOLVED_REASONS = (
    PIPELINE_NOT_FOUND,
    PIPELINE_VERSION_NOT_FOUND,
    EXPERIMENT_NOT_FOUND,
    RUN_CONFIGURATION_NOT_FOUND,
    ARTIFACT_NOT_AVAILABLE,
    INVALID_ARTIFACT_FILTER,
    INVALID_ARTIFACT_PATH,
    INVALID_PARAMETER,
    REFERENCE_NOT_ALLOWED,
    PIPELINE_NOT_READY,
    EXPERIMENT_NOT_READY,
)


@dataclass(frozen=True)
class PipelineVersion:
    """A KFP pipeline version, as needed to submit a run of it."""

    pipeline_id: str
    version_id: str
    name: str
    pipeline_spec: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


class KfpCatalog(Protocol):
    """Lookups of KFP objects by name. ``None`` means it does not exist (yet)."""

    def pipeline_id(self, name: str, namespace: str) -> str | None: ...

    def pipeline_version(self, pipeline_id: str, version_name: str | None) -> PipelineVersion | None:
        """The named version, or the latest one when ``version_name`` is None."""
        ...

    def experiment_id(self, display_name: str, namespace: str) -> str | None: ...

    def pipeline_version_by_id(self, pipeline_id: str, version_id: str) -> PipelineVersion | None:
        """A version by its id (for a run found in KFP, to record what it used)."""
        ...

    def experiment_name(self, experiment_id: str) -> str | None: ...


@dataclass(frozen=True)
class Resolved:
    """Everything needed to submit the run."""

    pipeline_id: str
    version: PipelineVersion
    experiment_id: str
    experiment_name: str
    parameters: Mapping[str, Any]
    dependencies: Mapping[str, Any]


@dataclass(frozen=True)
class Waiting:
    """Something the Run needs does not exist yet; the Run is re-evaluated when it may.

    ``waits_on_kfp`` says whether the missing thing lives in KFP (checked again on a
    timer) rather than in the cluster (a watch event re-triggers the Run).
    """

    reason: str
    message: str
    dependencies: Mapping[str, Any]
    waits_on_kfp: bool


@dataclass(frozen=True)
class Rejected:
    """The Run can never be submitted as written; its spec is immutable, so this is final."""

    reason: str
    message: str
    dependencies: Mapping[str, Any] = field(default_factory=dict)


Resolution = Resolved | Waiting | Rejected


@dataclass(frozen=True)
class ReferencePolicy:
    """Which RunConfigurations a Run's parameters may take values from.

    ``cross_namespace``: whether ``namespace/name`` may name another namespace (a setting, for
    multi-tenant clusters). ``watched``: the namespaces the operator sees (None: all); a reference
    outside them could never resolve.
    """

    cross_namespace: bool = True
    watched: frozenset[str] | None = None

    def problem(self, reference: str, namespace: str) -> str | None:
        target, _ = reference_target(reference, namespace)
        if target != namespace and not self.cross_namespace:
            return (
                f"RunConfiguration {reference} is in another namespace, and references across "
                f"namespaces are not allowed here (allowCrossNamespaceReferences is false)"
            )
        if self.watched is not None and target not in self.watched:
            return f"RunConfiguration {reference} is in namespace {target}, which the operator does not watch"
        return None


def validate_references(spec: RunSpec, namespace: str, policy: ReferencePolicy) -> Rejected | None:
    """Refuses references the operator may not, or cannot, follow."""
    for reference in sorted(spec.referenced_run_configurations()):
        problem = policy.problem(reference, namespace)
        if problem is not None:
            return Rejected(REFERENCE_NOT_ALLOWED, problem)
    return None


def validate_artifacts(spec: RunSpec) -> Rejected | None:
    """Checks what the CRD's pattern cannot: that every filter parses."""
    for artifact in spec.artifacts:
        try:
            parse_artifact_path(artifact.path)
        except InvalidArtifactPath as error:
            reason = INVALID_ARTIFACT_FILTER if error.filter_error is not None else INVALID_ARTIFACT_PATH
            return Rejected(reason, f"artifact {artifact.name}: {error}")
    return None


def resolve(
    spec: RunSpec,
    *,
    namespace: str,
    run_configurations: Mapping[str, Mapping[str, Any] | None],
    catalog: KfpCatalog,
    default_experiment: str,
    references: ReferencePolicy = ReferencePolicy(),
    pipeline_resource: Mapping[str, Any] | None = None,
    experiment_resource: Mapping[str, Any] | None = None,
    previous_version: str | None = None,
) -> Resolution:
    rejected = validate_artifacts(spec) or validate_references(spec, namespace, references)
    if rejected is not None:
        return rejected

    dependencies = dependency_snapshot(spec, run_configurations)
    values, missing = resolve_values(spec, run_configurations)
    if missing:
        return Waiting(
            reason=missing[0].reason,
            message="; ".join(m.message for m in missing),
            dependencies=dependencies,
            waits_on_kfp=False,
        )

    version_name = spec.pipeline.version
    if pipeline_resource is not None:
        declared = PipelineView(pipeline_resource)
        declared_id, version_name = _declared_pipeline(spec, declared, previous_version)
        if declared_id is None:
            return Waiting(
                PIPELINE_NOT_READY,
                f"Pipeline {spec.pipeline.name} is not ready: {declared.not_ready_reason()}",
                dependencies,
                waits_on_kfp=False,
            )
        pipeline_id: str | None = declared_id
    else:
        pipeline_id = catalog.pipeline_id(spec.pipeline.name, namespace)
    if pipeline_id is None:
        return Waiting(
            PIPELINE_NOT_FOUND,
            f"pipeline {spec.pipeline.name} does not exist in KFP",
            dependencies,
            waits_on_kfp=True,
        )
    version = catalog.pipeline_version(pipeline_id, version_name)
    if version is None:
        message = (
            f"pipeline {spec.pipeline.name} has no version {version_name} in KFP"
            if version_name
            else f"pipeline {spec.pipeline.name} has no versions in KFP"
        )
        return Waiting(PIPELINE_VERSION_NOT_FOUND, message, dependencies, waits_on_kfp=True)

    experiment_name = spec.experiment_name or default_experiment
    if experiment_resource is not None and spec.experiment_name:
        declared_experiment = ExperimentView(experiment_resource)
        if not declared_experiment.is_ready:
            return Waiting(
                EXPERIMENT_NOT_READY,
                f"Experiment {experiment_name} is not ready: {declared_experiment.not_ready_reason()}",
                dependencies,
                waits_on_kfp=False,
            )
        experiment_id = declared_experiment.kfp_id
    else:
        experiment_id = catalog.experiment_id(experiment_name, namespace)
    if experiment_id is None:
        return Waiting(
            EXPERIMENT_NOT_FOUND,
            f"experiment {experiment_name} does not exist in KFP",
            dependencies,
            waits_on_kfp=True,
        )

    try:
        parameters = convert_values(values, declared_parameter_types(version.pipeline_spec))
    except InvalidParameterValue as error:
        return Rejected(INVALID_PARAMETER, str(error), dependencies)

    return Resolved(
        pipeline_id=pipeline_id,
        version=version,
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        parameters=parameters,
        dependencies=dependencies,
    )


def _declared_pipeline(
    spec: RunSpec, declared: PipelineView, previous_version: str | None
) -> tuple[str | None, str | None]:
    """The KFP pipeline id and the version name a Pipeline resource offers; no id while it offers none."""
    pipeline_id = declared.kfp_id
    if declared.is_deleting or pipeline_id is None:
        return None, None
    if spec.pipeline.version is not None:
        return pipeline_id, spec.pipeline.version
    if declared.is_ready:
        return pipeline_id, declared.version
    if previous_version:
        return pipeline_id, previous_version  # a RunConfiguration keeps its version meanwhile
    return None, None
