"""Records rendered as the server's JSON (docs/emulator.md §3).

The server marshals with proto field names and ``EmitUnpopulated: false``: empty
strings, zero numbers, false, and empty lists and maps are left out, enums are names,
and int64 values are strings. Timestamps are messages, so a set-but-zero timestamp
still appears, as ``1970-01-01T00:00:00Z``.
"""

from __future__ import annotations

from typing import Any

from kfp_devstack.emulator.models import Experiment, Pipeline, PipelineVersion, Run, RunState, StateChange
from kfp_devstack.emulator.pipeline_spec import PipelineSpec
from kfp_devstack.emulator.task_details import render_task_details
from kfp_devstack.emulator.timestamps import format_timestamp


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Sets a field unless it holds its zero value, as EmitUnpopulated=false does."""
    if value not in ("", 0, False, None, [], {}):
        target[key] = value


def render_experiment(experiment: Experiment) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _put(body, "experiment_id", experiment.experiment_id)
    _put(body, "display_name", experiment.display_name)
    _put(body, "description", experiment.description)
    body["created_at"] = format_timestamp(experiment.created_at)
    _put(body, "namespace", experiment.namespace)
    body["storage_state"] = experiment.storage_state
    body["last_run_created_at"] = format_timestamp(experiment.last_run_created_at)
    return body


def render_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _put(body, "pipeline_id", pipeline.pipeline_id)
    _put(body, "display_name", pipeline.display_name)
    _put(body, "name", pipeline.name)
    _put(body, "description", pipeline.description)
    body["created_at"] = format_timestamp(pipeline.created_at)
    _put(body, "namespace", pipeline.namespace)
    _put(body, "tags", dict(pipeline.tags))
    return body


def render_pipeline_version(version: PipelineVersion, spec: PipelineSpec) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _put(body, "pipeline_id", version.pipeline_id)
    _put(body, "pipeline_version_id", version.pipeline_version_id)
    _put(body, "display_name", version.display_name)
    _put(body, "name", version.name)
    _put(body, "description", version.description)
    body["created_at"] = format_timestamp(version.created_at)
    if version.package_url:
        body["package_url"] = {"pipeline_url": version.package_url}
    _put(body, "code_source_url", version.code_source_url)
    body["pipeline_spec"] = spec.document()
    _put(body, "tags", dict(version.tags))
    return body


def render_run(run: Run, spec: PipelineSpec) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _put(body, "experiment_id", run.experiment_id)
    _put(body, "run_id", run.run_id)
    _put(body, "display_name", run.display_name)
    body["storage_state"] = run.storage_state
    _put(body, "description", run.description)
    if run.inline_spec:
        body["pipeline_spec"] = spec.document()
    else:
        body["pipeline_version_reference"] = {
            "pipeline_id": run.pipeline_id,
            "pipeline_version_id": run.pipeline_version_id,
        }
    if run.has_runtime_config and (run.parameters or run.pipeline_root):
        runtime_config: dict[str, Any] = {}
        _put(runtime_config, "parameters", dict(run.parameters))
        _put(runtime_config, "pipeline_root", run.pipeline_root)
        body["runtime_config"] = runtime_config
    _put(body, "service_account", run.service_account)
    body["created_at"] = format_timestamp(run.created_at)
    body["scheduled_at"] = format_timestamp(run.scheduled_at)
    body["finished_at"] = format_timestamp(run.finished_at)
    if run.state != RunState.UNSPECIFIED:  # the zero value of the enum is left out
        body["state"] = run.state
    task_details = render_task_details(run)
    if task_details:
        body["run_details"] = {"task_details": task_details}
    body["state_history"] = [_render_state_change(change) for change in run.state_history]
    _put(body, "plugins_input", run.plugins_input)
    return body


def _render_state_change(change: StateChange) -> dict[str, Any]:
    body: dict[str, Any] = {"update_time": format_timestamp(change.update_time)}
    if change.state != RunState.UNSPECIFIED:
        body["state"] = change.state
    return body


def render_list(
    items_key: str, items: list[dict[str, Any]], total_size: int, next_page_token: str
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    _put(body, items_key, items)
    _put(body, "total_size", total_size)
    _put(body, "next_page_token", next_page_token)
    return body
