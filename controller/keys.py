"""Object keys: what work queues hold and stores are indexed by.

The equivalent of client-go's ``cache.ObjectName`` / controller-runtime's
``types.NamespacedName``. Queues carry keys only, never objects: a reconciler reads the latest
state from the cache when it runs, which is what makes reconciliation level-triggered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ObjectKey(NamedTuple):
    """The namespace and name of an object; ``namespace`` is ``""`` for cluster-scoped objects."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        """Parses ``"namespace/name"`` or ``"name"`` (the inverse of ``str()``)."""
        namespace, sep, name = text.partition("/")
        if not sep:
            return cls("", namespace)
        if not namespace or not name or "/" in name:
            raise ValueError(f"invalid object key {text!r}")
        return cls(namespace, name)


class DeletedFinalStateUnknown(NamedTuple):
    """A tombstone: the object was deleted while the watch was down.

    Delivered to delete handlers instead of the object when a re-list found that a cached
    object no longer exists, so the deletion event itself was never seen. ``obj`` is the
    last state the cache knew, which may be stale (client-go ``DeletedFinalStateUnknown``).
    """

    key: ObjectKey
    obj: Mapping[str, Any]


def key_func(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> ObjectKey:
    """Returns the key of an API object (a dict as the API serves it) or of a tombstone."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    return ObjectKey(metadata.get("namespace") or "", name)
