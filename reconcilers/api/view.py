"""What every resource view shares: the metadata and status of a custom resource as read from the
cache, and its conditions. Views never mutate the underlying dict (it is the cache's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconcilers.api import FINALIZER


class ObjectView:
    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.metadata: Mapping[str, Any] = obj.get("metadata", {})
        self.status: Mapping[str, Any] = obj.get("status") or {}

    @property
    def namespace(self) -> str:
        return str(self.metadata["namespace"])

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def uid(self) -> str:
        return str(self.metadata["uid"])

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 1))

    @property
    def is_deleting(self) -> bool:
        return bool(self.metadata.get("deletionTimestamp"))

    @property
    def has_finalizer(self) -> bool:
        return FINALIZER in (self.metadata.get("finalizers") or ())

    def condition(self, condition_type: str) -> Mapping[str, Any] | None:
        for condition in self.status.get("conditions") or ():
            if condition.get("type") == condition_type:
                return condition  # type: ignore[no-any-return]
        return None
