"""``run_details.task_details`` as the Argo-backed server builds them (docs/emulator.md §9).

The server turns the workflow's nodes into task details: the workflow's own node,
``root-driver`` and the ``root`` DAG, then per started task ``<key>-driver``, the
``<key>`` DAG and its ``executor`` pod. Display names are the task keys (never
``set_display_name``), ``child_tasks`` name child node ids, and inputs, outputs,
execution ids and errors are never filled. The details appear once the workflow
has been reported running.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from kfp_devstack.emulator.models import Run, RunState, TaskProgress, TaskState
from kfp_devstack.emulator.timestamps import format_timestamp


@dataclass(frozen=True)
class WorkflowNode:
    name: str  # the Argo node name, unique within the workflow
    display_name: str
    state: str
    started: int
    finished: int
    children: tuple[str, ...] = ()


def render_task_details(run: Run) -> list[dict[str, Any]] | None:
    nodes = workflow_nodes(run)
    if not nodes:
        return None
    return [_render(run, run.progress.workflow_name, node) for node in nodes]


def workflow_nodes(run: Run) -> list[WorkflowNode]:
    """The Argo nodes of the run's workflow so far: none until it has been reported running."""
    progress = run.progress
    if not progress.running_since:
        return []
    workflow = progress.workflow_name
    run_state = _node_state(run.state)
    started, finished = progress.running_since, run.finished_at
    task_nodes: list[WorkflowNode] = []
    for task in progress.tasks.values():
        if task.started_at is None:
            continue
        base = f"{workflow}.root.{task.key}"
        task_started, task_finished = int(task.started_at), int(task.finished_at or 0)
        state = _task_state(task)
        task_nodes += [
            WorkflowNode(
                f"{base}-driver", f"{task.key}-driver", RunState.SUCCEEDED, task_started, task_started
            ),
            WorkflowNode(base, task.key, state, task_started, task_finished, (f"{base}.executor",)),
            WorkflowNode(f"{base}.executor", "executor", state, task_started, task_finished),
        ]
    root_driver = WorkflowNode(f"{workflow}.root-driver", "root-driver", RunState.SUCCEEDED, started, started)
    dag_children = tuple(node.name for node in task_nodes if not node.name.endswith(".executor"))
    dag = WorkflowNode(f"{workflow}.root", "root", run_state, started, finished, dag_children)
    top = WorkflowNode(workflow, workflow, run_state, started, finished, (root_driver.name, dag.name))
    return [top, root_driver, dag, *task_nodes]


def _render(run: Run, workflow: str, node: WorkflowNode) -> dict[str, Any]:
    history = [{"update_time": format_timestamp(node.started), "state": RunState.RUNNING}]
    if node.state != RunState.RUNNING:
        history.append({"update_time": format_timestamp(node.finished or node.started), "state": node.state})
    detail: dict[str, Any] = {
        "run_id": run.run_id,
        "task_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run.run_id}/{node.name}")),
        "display_name": node.display_name,
        "create_time": format_timestamp(run.created_at),
        "start_time": format_timestamp(node.started),
        "end_time": format_timestamp(node.finished),
        "state": node.state,
        "state_history": history,
    }
    if node.children:
        detail["child_tasks"] = [{"pod_name": node_id(workflow, child)} for child in node.children]
    return detail


def node_id(workflow: str, node_name: str) -> str:
    # Argo node ids are the workflow name plus a hash of the node name.
    return workflow if node_name == workflow else f"{workflow}-{zlib.crc32(node_name.encode())}"


def _node_state(state: str) -> str:
    return state if state in (RunState.SUCCEEDED, RunState.FAILED) else RunState.RUNNING


def _task_state(task: TaskProgress) -> str:
    return {
        TaskState.RUNNING: RunState.RUNNING,
        TaskState.SUCCEEDED: RunState.SUCCEEDED,
        TaskState.FAILED: RunState.FAILED,
    }.get(TaskState(task.state), RunState.RUNNING)
