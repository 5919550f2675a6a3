"""Informers: reflectors feeding a shared, indexed store, and event handlers fed by the store.

A port of the parts of client-go ``tools/cache/shared_informer.go`` that controllers use. One
:class:`Informer` per resource type is shared by every controller that reads or watches that
type (the manager keeps them), so each type is listed and watched once.

Contracts, as upstream:

* The store is a *subsequence* of the server's states: per object the order of changes is
  kept; across objects it is not.
* Handlers are called on the reflector's thread, after the store has been updated, one event
  at a time for the whole informer. They must be fast and must not block: hand keys to a work
  queue and return. An exception in a handler is logged and does not stop the informer.
* A handler added to an informer that already holds objects first receives an ``on_add`` for
  each of them, then every later change, with nothing missed or repeated in between.
* ``on_delete`` receives either the deleted object or, when the deletion happened while the
  watch was down and was only noticed by a re-list, a
  :class:`~controller.keys.DeletedFinalStateUnknown` tombstone holding the last known state.
* A re-list reports only what changed: objects with the same ``resourceVersion`` as the cached
  copy produce no event.
* With a ``resync_period`` every cached object is replayed to the handlers as
  ``on_update(obj, obj)`` that often. This never contacts the server.
* :meth:`Informer.has_synced` is true once every scope has been listed once.
* With a ``prompt_selector`` (a field selector) the first list of each scope is taken in two
  parts: the objects it selects, after which the watch starts and :meth:`Informer.prompt_synced`
  is true, then everything else, merged into the store while the watch runs (see
  :class:`~controller.reflector.Reflector`). Controllers that act on one object at a time and
  only on selected ones need not wait for the rest (an operator with a long history of
  finished objects is back at work in a second); :meth:`Informer.has_synced` waits for it.
* With a ``transform`` (client-go ``SetTransform``) every object is passed through it as it
  arrives, before it is stored or handed to a handler: the cache and the handlers see only the
  transformed form (the manager's informers use :func:`controller.transform.strip_for_cache`).

An informer covers a resource in all namespaces (``namespaces=()``) or in a given list of
namespaces, with one reflector (one list+watch) per namespace in the latter case.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from controller.clock import Clock, RealClock
from controller.keys import DeletedFinalStateUnknown, ObjectKey, key_func
from controller.reflector import MAX_WATCH_TIMEOUT, MIN_WATCH_TIMEOUT, PAGE_SIZE, ListerWatcher, Reflector
from controller.resource import Resource
from controller.store import IndexFunc, Obj, ReplaceResult, Store
from controller.transform import Transform

log = structlog.get_logger("controller.informer")


class EventHandler(Protocol):
    """client-go ``ResourceEventHandler``."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


@dataclass(frozen=True)
class EventHandlerFuncs:
    """An :class:`EventHandler` from optional functions (client-go ``ResourceEventHandlerFuncs``)."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update:
            self.update(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self.delete:
            self.delete(obj)


class HandlerRegistration:
    """Returned by :meth:`Informer.add_event_handler`; pass it to ``remove_event_handler``."""

    def __init__(self, handler: EventHandler) -> None:
        self.handler = handler


ListerWatcherFactory = Callable[[str | None], ListerWatcher]
"""Builds the lister-watcher for one scope: a namespace, or ``None`` for all namespaces."""


class Informer:
    """A shared informer for one resource type."""

    def __init__(
        self,
        resource: Resource,
        lister_watcher_factory: ListerWatcherFactory,
        *,
        namespaces: Sequence[str] = (),
        resync_period: float | None = None,
        clock: Clock | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        page_size: int = PAGE_SIZE,
        watch_timeout: tuple[int, int] = (MIN_WATCH_TIMEOUT, MAX_WATCH_TIMEOUT),
        transform: Transform | None = None,
        prompt_selector: str | None = None,
    ) -> None:
        self.resource = resource
        self.prompt_selector = prompt_selector
        self.store = Store(indexers)
        self._clock = clock or RealClock()
        self._resync_period = resync_period
        # Serialises store writes with handler calls and handler registration, so a new
        # handler's replay and the live events it receives afterwards neither overlap nor gap.
        self._dispatch = threading.RLock()
        self._registrations: list[HandlerRegistration] = []
        scopes: list[str | None] = list(dict.fromkeys(namespaces)) if namespaces else [None]
        self._reflectors = [
            Reflector(
                f"{resource}" + (f"/{scope}" if scope else ""),
                lister_watcher_factory(scope),
                _ScopedSink(self, scope),
                clock=self._clock,
                page_size=page_size,
                min_watch_timeout=watch_timeout[0],
                max_watch_timeout=watch_timeout[1],
                transform=transform,
                prompt_selector=prompt_selector,
            )
            for scope in scopes
        ]
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False

    # ---- cache access -------------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Registers an index on the store (see :meth:`controller.store.Store.add_indexer`)."""
        self.store.add_indexer(name, fn)

    def by_index(self, name: str, value: str) -> list[Obj]:
        return self.store.by_index(name, value)

    def get(self, key: ObjectKey) -> Obj | None:
        """Returns the cached object for ``key`` (shared: never modify it) or ``None``."""
        return self.store.get(key)

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self.store.list(namespace)

    # ---- handlers -----------------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler) -> HandlerRegistration:
        """Registers ``handler``; it first gets ``on_add`` for every object already cached."""
        registration = HandlerRegistration(handler)
        with self._dispatch:
            for obj in self.store.list():
                _call(handler.on_add, obj)
            self._registrations.append(registration)
        return registration

    def remove_event_handler(self, registration: HandlerRegistration) -> None:
        with self._dispatch:
            if registration in self._registrations:
                self._registrations.remove(registration)

    def _handlers(self) -> builtins.list[EventHandler]:
        return [registration.handler for registration in self._registrations]

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Starts one reflector thread per scope (and the resync thread, if configured)."""
        if self._started:
            return
        self._started = True
        for reflector in self._reflectors:
            thread = threading.Thread(target=reflector.run, name=f"reflector-{reflector.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._resync_period:
            thread = threading.Thread(target=self._resync_loop, name=f"resync-{self.resource}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the reflectors (closing their watches) and waits up to ``timeout`` for them."""
        self._stop.set()
        for reflector in self._reflectors:
            reflector.stop()
        for thread in self._threads:
            thread.join(timeout)

    def has_synced(self) -> bool:
        """True once every scope has been listed and delivered to the store."""
        return all(reflector.has_synced for reflector in self._reflectors)

    def prompt_synced(self) -> bool:
        """True once every scope's prompt objects have been listed (see ``prompt_selector``);
        the same as :meth:`has_synced` without one."""
        return all(reflector.prompt_synced for reflector in self._reflectors)

    def wait_for_sync(self, timeout: float | None = None, *, prompt_only: bool = False) -> bool:
        """Blocks until :meth:`has_synced` (or :meth:`prompt_synced`, with ``prompt_only``), or
        ``timeout`` seconds; returns whether it synced."""
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        for reflector in self._reflectors:
            remaining = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
            wait = reflector.wait_for_prompt_sync if prompt_only else reflector.wait_for_sync
            if not wait(remaining):
                return False
        return True

    @property
    def reflectors(self) -> Sequence[Reflector]:
        return tuple(self._reflectors)

    def _resync_loop(self) -> None:
        assert self._resync_period
        while not self._stop.wait(self._resync_period):
            with self._dispatch:
                handlers = self._handlers()
                for obj in self.store.list():
                    for handler in handlers:
                        _call(handler.on_update, obj, obj)

    # ---- deliveries from reflectors -------------------------------------------------------

    def _replace(self, objs: builtins.list[Obj], namespace: str | None) -> None:
        with self._dispatch:
            self._deliver(self.store.replace(objs, namespace))

    def _apply(self, objs: builtins.list[Obj]) -> None:
        with self._dispatch:
            self._deliver(self.store.apply(objs))

    def _deliver(self, result: ReplaceResult) -> None:
        """Tells the handlers what a list changed (the caller holds the dispatch lock)."""
        handlers = self._handlers()
        for old in result.deleted:
            tombstone = DeletedFinalStateUnknown(key_func(old), old)
            for handler in handlers:
                _call(handler.on_delete, tombstone)
        for old, new in result.updated:
            for handler in handlers:
                _call(handler.on_update, old, new)
        for obj in result.added:
            for handler in handlers:
                _call(handler.on_add, obj)

    def _upsert(self, obj: Obj) -> None:
        with self._dispatch:
            self._tell_stored(self.store.upsert(obj), obj)

    def _delete(self, obj: Obj) -> None:
        with self._dispatch:
            # Not cached (e.g. created and deleted within one watch gap): nothing to report.
            if self.store.delete(key_func(obj)) is not None:
                self._tell_deleted(obj)

    # While a scope's first list is merged behind its watch, the watch's changes are ordered
    # against what the list brings by resourceVersion, and its deletions are remembered so the
    # list cannot bring a deleted object back.

    def _upsert_if_newer(self, obj: Obj) -> None:
        with self._dispatch:
            stored, old = self.store.upsert_if_newer(obj)
            if stored:
                self._tell_stored(old, obj)

    def _delete_unless_newer(self, obj: Obj, deleted: dict[ObjectKey, Obj]) -> None:
        with self._dispatch:
            deleted[key_func(obj)] = obj
            if self.store.delete_unless_newer(obj) is not None:
                self._tell_deleted(obj)

    def _tell_stored(self, old: Obj | None, obj: Obj) -> None:
        """Tells the handlers of a watched object stored (the caller holds the dispatch lock)."""
        for handler in self._handlers():
            if old is None:
                _call(handler.on_add, obj)
            else:
                _call(handler.on_update, old, obj)

    def _tell_deleted(self, obj: Obj) -> None:
        for handler in self._handlers():
            _call(handler.on_delete, obj)

    def _merge(self, objs: builtins.list[Obj], deleted: dict[ObjectKey, Obj]) -> None:
        with self._dispatch:
            self._deliver(self.store.merge(objs, deleted))


class _ScopedSink:
    """Adapts a reflector for one namespace (or all) to its informer."""

    def __init__(self, informer: Informer, namespace: str | None) -> None:
        self._informer = informer
        self._namespace = namespace
        # The watch's deletions by key while a list is merged behind it; None otherwise. Read
        # and changed under the informer's dispatch lock, so a page merged by one thread and a
        # re-list's replace by another cannot interleave.
        self._deleted: dict[ObjectKey, Obj] | None = None

    def replace(self, objs: list[Obj]) -> None:
        with self._informer._dispatch:
            self._deleted = None
            self._informer._replace(objs, self._namespace)

    def apply(self, objs: list[Obj]) -> None:
        self._informer._apply(objs)

    def upsert(self, obj: Obj) -> None:
        with self._informer._dispatch:
            if self._deleted is None:
                self._informer._upsert(obj)
            else:
                self._informer._upsert_if_newer(obj)

    def delete(self, obj: Obj) -> None:
        with self._informer._dispatch:
            if self._deleted is None:
                self._informer._delete(obj)
            else:
                self._informer._delete_unless_newer(obj, self._deleted)

    def begin_merge(self) -> None:
        with self._informer._dispatch:
            self._deleted = {}

    def merge(self, objs: list[Obj]) -> None:
        """Stores a page of the list merged behind the watch; nothing once a replace or
        :meth:`end_merge` ended the merge."""
        with self._informer._dispatch:
            if self._deleted is not None:
                self._informer._merge(objs, self._deleted)

    def end_merge(self) -> None:
        with self._informer._dispatch:
            self._deleted = None


def _call(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("event handler failed")
