"""How Runs and RunConfigurations relate: the Run cache's indexes and the watch mappings built on them.

A RunConfiguration change must reach the Runs that depend on it (their parameters reference it,
or it owns them), and a Run change must reach the RunConfiguration that owns it. The informer
cache keeps an index per relation, so each mapping is a lookup, not a scan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from controller.keys import ObjectKey
from controller.store import Store, namespaced_index_value
from reconcilers.api.run import PipelineRef, RunView, reference_target
from reconcilers.api.runconfiguration import RunConfigurationView

# Index of the Run cache: the RunConfiguration a Run belongs to, as "<namespace>/<name>".
OWNER_INDEX = "runconfiguration/owner"
# Index of the Run cache: the RunConfigurations a Run's parameters reference.
REFERENCE_INDEX = "runconfiguration/referenced"
# Index of the RunConfiguration cache: the RunConfigurations one references (parameters, triggers).
UPSTREAM_INDEX = "runconfiguration/upstream"


def owner_index(obj: Mapping[str, Any]) -> list[str]:
    run = RunView(obj)
    owner = run.owning_run_configuration()
    return [namespaced_index_value(run.namespace, owner)] if owner else []


# The Run indexes run on every object listed or watched (a restart lists every cached Run), so
# they read the few fields they need from the object rather than parse its whole spec; each gives
# what RunView(obj).spec would (a test checks they agree).


def reference_index(obj: Mapping[str, Any]) -> list[str]:
    namespace = RunView(obj).namespace
    references = {
        ref["name"]
        for parameter in (obj.get("spec") or {}).get("runtimeParameters") or ()
        if (ref := (parameter.get("valueFrom") or {}).get("runConfigurationRef"))
    }
    return [namespaced_index_value(*reference_target(reference, namespace)) for reference in references]


def upstream_index(obj: Mapping[str, Any]) -> list[str]:
    rc = RunConfigurationView(obj)
    return sorted(
        {namespaced_index_value(*reference_target(reference, rc.namespace)) for reference in rc.referenced()}
    )


def runs_by(runs: Store, index: str) -> Callable[[Mapping[str, Any]], list[ObjectKey]]:
    """Maps a RunConfiguration to the objects (Runs, or RunConfigurations) ``index`` relates it to."""

    def map_func(rc: Mapping[str, Any]) -> list[ObjectKey]:
        metadata = rc.get("metadata") or {}
        return runs.index_keys(index, namespaced_index_value(metadata["namespace"], metadata["name"]))

    return map_func


def owner_of(run: Mapping[str, Any]) -> list[ObjectKey]:
    """Maps a Run to the RunConfiguration that owns it, if any."""
    view = RunView(run)
    owner = view.owning_run_configuration()
    return [ObjectKey(view.namespace, owner)] if owner else []


# -- Pipeline and Experiment resources ---------------------------------------------------------------
#
# A Run or RunConfiguration that names a pipeline or an experiment uses the Pipeline or Experiment
# resource of that name in its namespace when there is one: a change to the resource must reach
# them (a waiting Run resolves, onChange: pipeline fires). The Run and RunConfiguration caches keep
# an index of the names they reference, as "<namespace>/<name>".

# Index of the Run and RunConfiguration caches: the pipeline a Run (or spec.run) names.
PIPELINE_INDEX = "pipeline/referenced"
# Index of the Run and RunConfiguration caches: the experiment a Run (or spec.run) names.
EXPERIMENT_INDEX = "experiment/referenced"


def run_pipeline_index(obj: Mapping[str, Any]) -> list[str]:
    pipeline = PipelineRef.parse((obj.get("spec") or {}).get("pipeline", ""))
    return [namespaced_index_value(RunView(obj).namespace, pipeline.name)]


def run_experiment_index(obj: Mapping[str, Any]) -> list[str]:
    name = (obj.get("spec") or {}).get("experimentName") or None
    return [namespaced_index_value(RunView(obj).namespace, name)] if name else []


def rc_pipeline_index(obj: Mapping[str, Any]) -> list[str]:
    rc = RunConfigurationView(obj)
    return [namespaced_index_value(rc.namespace, rc.run.pipeline.name)]


def rc_experiment_index(obj: Mapping[str, Any]) -> list[str]:
    rc = RunConfigurationView(obj)
    name = rc.run.experiment_name
    return [namespaced_index_value(rc.namespace, name)] if name else []


def unsubmitted_runs_by(runs: Store, index: str) -> Callable[[Mapping[str, Any]], list[ObjectKey]]:
    """Maps a Pipeline or Experiment to the Runs naming it that are not submitted yet (the others
    have frozen what they use)."""

    def map_func(resource: Mapping[str, Any]) -> list[ObjectKey]:
        metadata = resource.get("metadata") or {}
        value = namespaced_index_value(metadata["namespace"], metadata["name"])
        return [
            ObjectKey(RunView(run).namespace, RunView(run).name)
            for run in runs.by_index(index, value)
            if not (run.get("status") or {}).get("providerId")
        ]

    return map_func
