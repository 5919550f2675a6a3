"""What the informer cache keeps of each object, and in what form (client-go's informer transforms).

Every object a reflector lists or watches passes through :func:`strip_for_cache` before it is
stored, so the cache holds what reconcilers read and nothing else, as compactly as plain
``dict``s allow. The API server's objects are untouched: this only shapes the local copy.

**Kept**: ``apiVersion``, ``kind``, ``spec``, ``status`` and every other top-level field, whole;
of ``metadata`` only :data:`KEPT_METADATA` (identity, ``resourceVersion`` and ``generation``,
creation and deletion times, labels, annotations, finalizers, owner references).

**Dropped**: ``metadata.managedFields`` (server-side apply bookkeeping, often the largest part
of an object that many writers touched), the ``kubectl.kubernetes.io/last-applied-configuration``
annotation (a second copy of the object as last applied), and the other metadata fields no
reconciler reads (``generateName``, ``selfLink``, ``deletionGracePeriodSeconds``).

**Compact form**: short strings are interned (:func:`sys.intern`), so the values that recur
across objects (condition types, reasons and statuses, timestamps of the same second, names of
pipelines, experiments and namespaces, API versions and kinds) are stored once, not once per
object. Dict keys need no such care: :func:`controller.jsoncodec.loads` shares them already.
Interned strings are freed with the last object that uses them.

The transform changes the object it is given (a freshly decoded one, which nothing else holds)
and returns it; a caller that must keep its argument intact passes a copy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Transform = Callable[[Obj], Obj]

KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
)
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# Longer strings (messages, locations, compiled pipeline specs) rarely recur: interning them
# would only cost the lookup.
MAX_INTERNED_LENGTH = 64


def strip_for_cache(obj: Obj) -> Obj:
    """Reduces ``obj`` (in place) to what the cache keeps, in its compact form; returns it."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        kept = {key: metadata[key] for key in KEPT_METADATA if key in metadata}
        annotations = kept.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED_ANNOTATION in annotations:
            kept["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
        obj["metadata"] = kept
    _intern_strings(obj)
    return obj


def _intern_strings(root: dict[str, Any]) -> None:
    # Iterative and type-exact: this runs for every object listed or watched, so it avoids
    # recursion and isinstance() on the hot path. Replacing values of existing keys while
    # iterating is allowed (the dict's size does not change).
    intern, limit = sys.intern, MAX_INTERNED_LENGTH
    dicts: list[dict[str, Any]] = [root]
    lists: list[list[Any]] = []
    while dicts or lists:
        if dicts:
            node = dicts.pop()
            for key, item in node.items():
                kind = type(item)
                if kind is str:
                    if len(item) <= limit:
                        node[key] = intern(item)
                elif kind is dict:
                    dicts.append(item)
                elif kind is list:
                    lists.append(item)
        else:
            array = lists.pop()
            for index, item in enumerate(array):
                kind = type(item)
                if kind is str:
                    if len(item) <= limit:
                        array[index] = intern(item)
                elif kind is dict:
                    dicts.append(item)
                elif kind is list:
                    lists.append(item)
