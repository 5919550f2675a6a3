"""Trigger causes, and the Runs that answer them, as pure functions.

A *cause* is one reason to create a Run: a new pipeline version (``onChangePipeline``), a changed
``spec.run`` (``onChangeRunSpec``), a new succeeded run of an upstream RunConfiguration
(``runConfiguration``), or a schedule tick (``schedule``). A cause is *pending* when it is
neither recorded in the RunConfiguration's status nor carried by a Run that already exists: each
Run lists its causes in an annotation, and its name is derived from them. So a retry after a
crash between creating the Run and recording its causes finds that Run (in the cache, or by the
create's AlreadyExists) instead of creating another: every cause fires exactly once, decided
from the cluster's state, never from memory.

Change causes that are pending together are answered by one Run, as the reference operator
does; every schedule tick gets a Run of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcilers.api import API_VERSION, GROUP, RUN_CONFIGURATION_LABEL, RUNS
from reconcilers.api.run import PipelineRef, RunSpec, RunView, reference_target, spec_version
from reconcilers.api.runconfiguration import ON_CHANGE_PIPELINE, ON_CHANGE_RUN_SPEC, RunConfigurationView
from reconcilers.timestamps import format_time

ON_CHANGE_PIPELINE_TRIGGER = "onChangePipeline"
ON_CHANGE_RUN_SPEC_TRIGGER = "onChangeRunSpec"
RUN_CONFIGURATION_TRIGGER = "runConfiguration"
SCHEDULE_TRIGGER = "schedule"
TRIGGERS = (
    ON_CHANGE_PIPELINE_TRIGGER,
    ON_CHANGE_RUN_SPEC_TRIGGER,
    RUN_CONFIGURATION_TRIGGER,
    SCHEDULE_TRIGGER,
)

TRIGGER_TYPE_LABEL = f"{GROUP}/trigger-type"
TRIGGER_SOURCE_LABEL = f"{GROUP}/trigger-source"
TRIGGER_SOURCE_NAMESPACE_LABEL = f"{GROUP}/trigger-source-namespace"
CAUSES_ANNOTATION = f"{GROUP}/trigger-causes"
SCHEDULED_TIME_ANNOTATION = f"{GROUP}/scheduled-time"

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@dataclass(frozen=True, order=True)
class Cause:
    """One reason to create a Run: the trigger, what it watches (``source``), and its new value."""

    trigger: str
    source: str
    value: str

    def __str__(self) -> str:
        return f"{self.trigger}:{self.source}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Cause | None:
        trigger, _, rest = text.partition(":")
        source, _, value = rest.partition(":")
        return cls(trigger, source, value) if trigger in TRIGGERS and value else None


@dataclass(frozen=True)
class TriggerState:
    """What the status records as triggered already (the reference's fields)."""

    pipeline_version: str
    run_spec_version: str
    run_configurations: Mapping[str, str]  # reference as written -> provider id of the run

    @classmethod
    def of(cls, rc: RunConfigurationView) -> TriggerState:
        triggers = rc.status.get("triggers") or {}
        return cls(
            pipeline_version=rc.status.get("triggeredPipelineVersion") or "",
            run_spec_version=(triggers.get("runSpec") or {}).get("version") or "",
            run_configurations={
                ref: (entry or {}).get("providerId") or ""
                for ref, entry in (triggers.get("runConfigurations") or {}).items()
            },
        )


def change_causes(
    rc: RunConfigurationView,
    *,
    pipeline_version: str,
    upstream: Mapping[str, str],
) -> list[Cause]:
    """The change causes not recorded as triggered yet.

    ``upstream`` maps each trigger reference to the provider id of its latest succeeded run
    ("" while it has none).
    """
    recorded = TriggerState.of(rc)
    causes = []
    if ON_CHANGE_PIPELINE in rc.on_change and pipeline_version != recorded.pipeline_version:
        causes.append(Cause(ON_CHANGE_PIPELINE_TRIGGER, rc.run.pipeline.name, pipeline_version))
    run_spec_version = spec_version(rc.run)
    if ON_CHANGE_RUN_SPEC in rc.on_change and run_spec_version != recorded.run_spec_version:
        causes.append(Cause(ON_CHANGE_RUN_SPEC_TRIGGER, rc.name, run_spec_version))
    for reference in rc.trigger_references:
        provider_id = upstream.get(reference, "")
        if provider_id and provider_id != recorded.run_configurations.get(reference, ""):
            causes.append(Cause(RUN_CONFIGURATION_TRIGGER, reference, provider_id))
    return causes


def schedule_cause(tick: datetime) -> Cause:
    return Cause(SCHEDULE_TRIGGER, "", format_time(tick))


def covered(runs: Iterable[RunView]) -> set[Cause]:
    """The causes the existing Runs were created for."""
    causes: set[Cause] = set()
    for run in runs:
        for text in causes_of(run):
            cause = Cause.parse(text)
            if cause is not None:
                causes.add(cause)
    return causes


def causes_of(run: RunView) -> list[str]:
    raw = run.annotations.get(CAUSES_ANNOTATION)
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return [c for c in parsed if isinstance(c, str)] if isinstance(parsed, list) else []


def triggered_state(
    rc: RunConfigurationView, *, pipeline_version: str, upstream: Mapping[str, str]
) -> dict[str, Any]:
    """The status fields that record every current cause as triggered (as the reference writes them)."""
    return {
        "triggeredPipelineVersion": pipeline_version,
        "triggers": {
            "runSpec": {"version": spec_version(rc.run)},
            "runConfigurations": {
                reference: {"providerId": upstream[reference]}
                for reference in rc.trigger_references
                if upstream.get(reference)
            },
        },
    }


def trigger_cycle(
    start: tuple[str, str], upstreams: Callable[[tuple[str, str]], Sequence[tuple[str, str]]]
) -> list[tuple[str, str]] | None:
    """A path of ``runConfigurations`` triggers leading from ``start`` back to it, if there is one.

    ``upstreams`` gives the (namespace, name) of the RunConfigurations one triggers on. A cycle
    would make the RunConfigurations on it trigger each other for ever.
    """
    path: list[tuple[str, str]] = [start]
    seen: set[tuple[str, str]] = set()

    def visit(node: tuple[str, str]) -> bool:
        for upstream in upstreams(node):
            if upstream == start:
                path.append(upstream)
                return True
            if upstream in seen:
                continue
            seen.add(upstream)
            path.append(upstream)
            if visit(upstream):
                return True
            path.pop()
        return False

    return path if visit(start) else None


def run_name(rc_name: str, causes: Sequence[Cause]) -> str:
    """The deterministic name of the Run answering ``causes``: ``<rc>-<10 hex digits>``."""
    digest = hashlib.sha256("\n".join(sorted(str(c) for c in causes)).encode()).hexdigest()
    return f"{rc_name}-{digest[:10]}"


def build_run(rc: RunConfigurationView, causes: Sequence[Cause], pipeline_version: str) -> dict[str, Any]:
    """The Run answering ``causes``: ``spec.run`` with the pipeline version pinned, owned by ``rc``."""
    primary = min(causes, key=lambda c: TRIGGERS.index(c.trigger))
    labels = {RUN_CONFIGURATION_LABEL: rc.name, TRIGGER_TYPE_LABEL: primary.trigger}
    source_namespace, source = _source(rc, primary)
    if source:
        labels[TRIGGER_SOURCE_LABEL] = _label_value(source)
    if source_namespace:
        labels[TRIGGER_SOURCE_NAMESPACE_LABEL] = source_namespace
    annotations = {CAUSES_ANNOTATION: json.dumps(sorted(str(c) for c in causes))}
    if primary.trigger == SCHEDULE_TRIGGER:
        annotations[SCHEDULED_TIME_ANNOTATION] = primary.value
    pinned = RunSpec(
        pipeline=PipelineRef(rc.run.pipeline.name, pipeline_version),
        experiment_name=rc.run.experiment_name,
        runtime_parameters=rc.run.runtime_parameters,
        artifacts=rc.run.artifacts,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": RUNS.kind,
        "metadata": {
            "name": run_name(rc.name, causes),
            "namespace": rc.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "RunConfiguration",
                    "name": rc.name,
                    "uid": rc.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pinned.to_dict(),
    }


def why(causes: Sequence[Cause]) -> str:
    """The causes in words, for Events and logs."""
    words = []
    for cause in sorted(causes):
        match cause.trigger:
            case "onChangePipeline":
                words.append(f"pipeline {cause.source} has a new version {cause.value}")
            case "onChangeRunSpec":
                words.append(f"spec.run changed (version {cause.value})")
            case "runConfiguration":
                words.append(f"RunConfiguration {cause.source} succeeded ({cause.value})")
            case _:
                words.append(f"schedule tick at {cause.value}")
    return "; ".join(words)


def _source(rc: RunConfigurationView, cause: Cause) -> tuple[str, str]:
    """(namespace, name) of what the cause watches, for the trigger-source labels."""
    if cause.trigger == RUN_CONFIGURATION_TRIGGER:
        return reference_target(cause.source, rc.namespace)
    return "", cause.source


def _label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a bounded, valid stand-in with a hash."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    kept = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:50].strip("-_.")
    return f"{kept}-{digest}" if kept else digest
