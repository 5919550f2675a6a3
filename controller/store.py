"""The informer's local cache: a thread-safe map from key to object, with secondary indexes.

A port of client-go ``tools/cache`` ``threadSafeMap`` + ``Indexer``. The informer writes to it
(one writer per object, from the reflector thread of the object's namespace); reconcilers and
event handlers read from it, from any thread.

**Objects returned by the store are shared and must not be modified** (sample-controller:
"NEVER modify objects from the store"). They are the dicts decoded from the API's JSON;
``copy.deepcopy`` one before changing it, or better, build a patch.

Indexes are pluggable: :meth:`Store.add_indexer` registers a function that maps an object to
the index values it should be found under (e.g. a Run to the names of the RunConfigurations it
references), and :meth:`Store.by_index` / :meth:`Store.index_keys` answer "which objects have
this value". Index values are strings; include the namespace in them when the relationship is
namespace-local (see :func:`namespaced_index_value`).
"""

from __future__ import annotations

import builtins
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.keys import ObjectKey, key_func

Obj = dict[str, Any]
IndexFunc = Callable[[Mapping[str, Any]], Iterable[str]]


def namespaced_index_value(namespace: str, value: str) -> str:
    """Builds an index value scoped to a namespace: ``"<namespace>/<value>"``."""
    return f"{namespace}/{value}"


def resource_version(obj: Mapping[str, Any] | None) -> str:
    """Returns ``metadata.resourceVersion`` of ``obj`` ("" if absent)."""
    if not obj:
        return ""
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


def is_newer(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a later state than ``than`` by their ``resourceVersion``.

    Kubernetes calls resourceVersions opaque, and only an informer that merges two reads of the
    server (a list taken while a watch already runs; see :meth:`Store.merge`) needs to order
    them: it does so as etcd's revisions, the integers every API server backed by etcd gives.
    One that is not an integer counts as newer, so a server with other versions loses nothing.
    """
    try:
        return int(resource_version(obj)) > int(resource_version(than))
    except ValueError:
        return True


def _index_values(fn: IndexFunc, obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The distinct values ``fn`` gives ``obj``, interned: the index's keys and every object's
    record of them are then one string."""
    values = fn(obj)
    # Most objects have no value or one in an index, and a restart indexes every cached object:
    # those two cases skip building a generator and a dict.
    if isinstance(values, list | tuple) and len(values) <= 1:
        return (sys.intern(values[0]),) if values else ()
    return tuple(dict.fromkeys(sys.intern(value) for value in values))


@dataclass
class ReplaceResult:
    """What :meth:`Store.replace` changed: the informer turns this into handler calls."""

    added: list[Obj] = field(default_factory=list)
    updated: list[tuple[Obj, Obj]] = field(default_factory=list)
    deleted: list[Obj] = field(default_factory=list)


class Store:
    """A thread-safe object cache keyed by :class:`~controller.keys.ObjectKey`, with indexes."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._lock = threading.RLock()
        self._items: dict[ObjectKey, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        # index name -> index value -> keys
        self._indices: dict[str, dict[str, set[ObjectKey]]] = {}
        # key -> the values the cached object is indexed under, one tuple per indexer in the
        # order of ``_indexers``: an update then runs the index functions on the new object
        # only, not on the old one again. Tuples of interned strings: a few bytes per object.
        self._indexed: dict[ObjectKey, tuple[tuple[str, ...], ...]] = {}
        for name, fn in (indexers or {}).items():
            self.add_indexer(name, fn)

    # ---- indexes ----------------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Registers an index. Objects already cached are indexed at once.

        ``fn`` must be a pure function of the object and must not raise; it is called under
        the store's lock on every change.
        """
        with self._lock:
            if name in self._indexers:
                raise ValueError(f"indexer {name!r} already exists")
            self._indexers[name] = fn
            index: dict[str, set[ObjectKey]] = {}
            for key, obj in self._items.items():
                values = _index_values(fn, obj)
                self._indexed[key] = (*self._indexed.get(key, ()), values)
                for value in values:
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Returns the cached objects whose index ``name`` contains ``value``."""
        with self._lock:
            return [self._items[key] for key in self._index(name).get(value, ())]

    def index_keys(self, name: str, value: str) -> list[ObjectKey]:
        """Returns the keys of the cached objects whose index ``name`` contains ``value``."""
        with self._lock:
            return sorted(self._index(name).get(value, ()))

    def index_values(self, name: str) -> list[str]:
        """Returns every value currently present in index ``name``."""
        with self._lock:
            return sorted(self._index(name))

    def _index(self, name: str) -> dict[str, set[ObjectKey]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"no indexer named {name!r}") from None

    def _update_indices(self, key: ObjectKey, old: Obj | None, new: Obj | None) -> None:
        if not self._indexers:
            return
        previous = self._indexed.pop(key, ()) if old is not None else ()
        current: list[tuple[str, ...]] = []
        for position, (name, fn) in enumerate(self._indexers.items()):
            old_values = previous[position] if position < len(previous) else ()
            new_values = _index_values(fn, new) if new is not None else ()
            current.append(new_values)
            if old_values == new_values:
                continue
            # The value tuples are short (mostly one value or none): membership in them is
            # cheaper than building sets.
            index = self._indices[name]
            for value in old_values:
                if value not in new_values:
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            for value in new_values:
                if value not in old_values:
                    index.setdefault(value, set()).add(key)
        if new is not None:
            self._indexed[key] = tuple(current)

    # ---- reads ------------------------------------------------------------------------

    def get(self, key: ObjectKey) -> Obj | None:
        """Returns the cached object (shared: do not modify) or ``None``."""
        with self._lock:
            return self._items.get(key)

    def list(self, namespace: str | None = None) -> list[Obj]:
        """Returns every cached object, or those of one namespace."""
        with self._lock:
            if namespace is None:
                return list(self._items.values())
            return [obj for key, obj in self._items.items() if key.namespace == namespace]

    def list_keys(self) -> builtins.list[ObjectKey]:
        """Returns every cached key, sorted (client-go ``ListKeys``)."""
        with self._lock:
            return sorted(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    # ---- writes (the informer's) ---------------------------------------------------------

    def upsert(self, obj: Obj) -> Obj | None:
        """Stores ``obj`` under its key; returns the object it replaced, if any."""
        key = key_func(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            self._update_indices(key, old, obj)
            return old

    def delete(self, key: ObjectKey) -> Obj | None:
        """Removes the object stored under ``key``; returns it, or ``None`` if absent."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._update_indices(key, old, None)
            return old

    def upsert_if_newer(self, obj: Obj) -> tuple[bool, Obj | None]:
        """Stores ``obj`` unless a later state of it is stored (:func:`is_newer`); returns
        whether it was stored and the object stored before."""
        key = key_func(obj)
        with self._lock:
            old = self._items.get(key)
            if old is not None and not is_newer(obj, old):
                return False, old
            self._items[key] = obj
            self._update_indices(key, old, obj)
            return True, old

    def delete_unless_newer(self, deleted: Obj) -> Obj | None:
        """Removes the object stored under ``deleted``'s key unless the stored one is a later
        state (an object of the same name created since); returns what was removed."""
        key = key_func(deleted)
        with self._lock:
            old = self._items.get(key)
            if old is None or is_newer(old, deleted):
                return None
            del self._items[key]
            self._update_indices(key, old, None)
            return old

    def merge(self, objs: Iterable[Obj], deleted: Mapping[ObjectKey, Obj]) -> ReplaceResult:
        """Stores a page of a list that was read while a watch was already delivering changes:
        an object is stored only if nothing newer of it is stored and it was not ``deleted``
        (the watch's deletions so far, by key) at or after its version. Nothing is removed."""
        result = ReplaceResult()
        with self._lock:
            for obj in objs:
                key = key_func(obj)
                gone = deleted.get(key)
                if gone is not None and not is_newer(obj, gone):
                    continue
                old = self._items.get(key)
                if old is not None and not is_newer(obj, old):
                    continue
                self._items[key] = obj
                self._update_indices(key, old, obj)
                if old is None:
                    result.added.append(obj)
                else:
                    result.updated.append((old, obj))
        return result

    def replace(self, objs: Iterable[Obj], namespace: str | None = None) -> ReplaceResult:
        """Makes the cache equal to a fresh list, and reports the difference.

        ``namespace`` limits the replacement to one namespace (an informer that watches a
        list of namespaces lists each one separately); ``None`` replaces everything.
        Objects whose ``resourceVersion`` did not change are not reported: the informer
        delivers changes, and a re-list after a watch gap must neither lose nor duplicate
        them. Cached objects missing from the list are removed and reported as deleted.
        Objects already stored by :meth:`apply` (the same dicts) are left as they are.
        """
        result = ReplaceResult()
        listed = builtins.list(objs)
        # After a paged list, apply() has stored every listed object already: those dicts are
        # recognised by identity (the list holds them, so their ids are theirs for this call),
        # and only the others have their keys computed, on the last step of a restart.
        listed_ids = {id(obj) for obj in listed}
        with self._lock:
            stored_ids: set[int] = set()
            unlisted: list[ObjectKey] = []
            for key, stored in self._items.items():
                if namespace is not None and key.namespace != namespace:
                    continue
                if id(stored) in listed_ids:
                    stored_ids.add(id(stored))
                else:
                    unlisted.append(key)
            fresh = {key_func(obj): obj for obj in listed if id(obj) not in stored_ids}
            for key in unlisted:
                if key not in fresh:
                    gone = self._items.pop(key)
                    self._update_indices(key, gone, None)
                    result.deleted.append(gone)
            self._store_all(fresh, result)
        return result

    def apply(self, objs: Iterable[Obj]) -> ReplaceResult:
        """Stores a part of a fresh list (one page) ahead of :meth:`replace` with the whole list,
        and reports what it added or changed, as :meth:`replace` does; nothing is removed."""
        result = ReplaceResult()
        with self._lock:
            self._store_all({key_func(obj): obj for obj in objs}, result)
        return result

    def _store_all(self, fresh: Mapping[ObjectKey, Obj], result: ReplaceResult) -> None:
        for key, obj in fresh.items():
            old = self._items.get(key)
            if old is obj:
                continue
            self._items[key] = obj
            self._update_indices(key, old, obj)
            if old is None:
                result.added.append(obj)
            elif resource_version(old) != resource_version(obj) or not resource_version(obj):
                result.updated.append((old, obj))
