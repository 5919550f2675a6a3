"""The ML Metadata records artifact resolution reads, as plain values.

The ML Metadata client (``kfp_operator.clients.mlmd``) turns MLMD's protobuf messages into these,
so artifact resolution depends on no protobuf package, and tests build records directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Execution states (ml_metadata.Execution.State) that mean a task produced its outputs.
COMPLETE, CACHED = "COMPLETE", "CACHED"
# Artifact state (ml_metadata.Artifact.State) of an artifact that exists.
LIVE = "LIVE"
# Event type (ml_metadata.Event.Type) linking an execution to what it produced.
OUTPUT = "OUTPUT"


@dataclass(frozen=True)
class Execution:
    """An execution: its id, type name, state, and its string custom properties (``task_name``...)."""

    id: int
    type: str
    state: str
    strings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """An event: which execution, which artifact, its type and path (keys and indexes)."""

    execution_id: int
    artifact_id: int
    type: str
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Artifact:
    """An artifact: its URI, state, and custom properties as filters see them (``mlmd_values``)."""

    id: int
    uri: str
    state: str
    properties: Mapping[str, object] = field(default_factory=dict)
