"""An Argo Workflow's ``status`` as Argo would write it for a run where the run engine has it.

With a real KFP API server, nothing executes the Workflows it creates; the emulator's
run engine decides what each run does (a *shadow* run, docs/emulator.md §15) and this
module turns where the engine has got to into the Workflow status Argo would report:
the phase, start and finish times, and one node per Argo node (the same nodes the
emulator renders as task details, so both backends answer the same ``task_details``).

Until the run starts the Workflow has no status at all, as before Argo's controller
picks it up: the persistence agent then reports it without a phase.
"""

from __future__ import annotations

from typing import Any

from kfp_devstack.emulator.models import Run, RunState
from kfp_devstack.emulator.task_details import WorkflowNode, node_id, workflow_nodes
from kfp_devstack.emulator.timestamps import format_timestamp

_ARGO_PHASE = {RunState.RUNNING: "Running", RunState.SUCCEEDED: "Succeeded", RunState.FAILED: "Failed"}
# What Argo writes when a deadline (terminate sets activeDeadlineSeconds to 0) stops a workflow.
TERMINATED_MESSAGE = "Step exceeded its deadline"


def workflow_status(run: Run, *, terminated: bool = False) -> dict[str, Any] | None:
    """The status for the run's Workflow, or None while it has not started."""
    nodes = workflow_nodes(run)
    phase = _ARGO_PHASE.get(RunState(run.state), "Running")
    if not nodes and phase == "Running":
        return None
    workflow = run.progress.workflow_name
    status: dict[str, Any] = {
        "phase": phase,
        # A run terminated before it started fails at once, with no nodes.
        "startedAt": format_timestamp(run.progress.running_since or run.finished_at),
        "finishedAt": format_timestamp(run.finished_at) if phase != "Running" else None,
        "progress": f"{_done(run)}/{len(run.progress.tasks)}",
        "nodes": {node_id(workflow, node.name): _node(workflow, node) for node in nodes},
    }
    if phase == "Failed" and terminated:
        status["message"] = TERMINATED_MESSAGE
    return status


def _done(run: Run) -> int:
    return sum(1 for task in run.progress.tasks.values() if task.finished_at is not None)


def _node(workflow: str, node: WorkflowNode) -> dict[str, Any]:
    phase = _ARGO_PHASE.get(RunState(node.state), "Running")
    is_pod = node.display_name == "executor" or node.display_name.endswith("-driver")
    body: dict[str, Any] = {
        "id": node_id(workflow, node.name),
        "name": node.name,
        "displayName": node.display_name,
        "type": "Pod" if is_pod else "DAG",
        "templateName": _template(node),
        "phase": phase,
        "startedAt": format_timestamp(node.started),
        "finishedAt": format_timestamp(node.finished) if phase != "Running" else None,
    }
    if node.children:
        body["children"] = [node_id(workflow, child) for child in node.children]
    return body


def _template(node: WorkflowNode) -> str:
    # The template names of a compiled KFP v2 pipeline's Argo workflow.
    if node.display_name == "executor":
        return "system-container-impl"
    if node.display_name == "root-driver":
        return "system-dag-driver"
    if node.display_name.endswith("-driver"):
        return "system-container-driver"
    if node.name.count(".") == 0:
        return "entrypoint"
    return "root" if node.display_name == "root" else "system-container-executor"
