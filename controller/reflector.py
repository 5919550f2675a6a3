"""List+watch for one resource in one scope: a port of client-go ``tools/cache/reflector.go``.

A :class:`Reflector` keeps a sink (the informer's store) equal to the server's state, through
disconnects, expired resource versions and API-server restarts. It knows nothing about
controllers. The loop, as upstream ``ListAndWatch`` inside ``BackoffUntil``:

1. **List**, 500 objects per page following ``continue`` tokens. Each page goes to
   ``sink.apply`` as it arrives (added and changed objects are stored and reported while the API
   server prepares the next page), then the whole list to ``sink.replace``: objects that
   vanished since the last list are reported as deletions (tombstones), so a deletion missed
   while disconnected is still delivered. The sink counts as synced only after that.

   * The first list is a consistent read (``resourceVersion=""``). client-go's paginated list
     starts at ``"0"`` (any cached state); a quorum read is as cheap on Kubernetes >= 1.31,
     whose watch cache serves consistent lists, and a newly elected leader never starts from
     state older than what its predecessor wrote.
   * client-go >= 1.35 lists by default with a streaming watch (``sendInitialEvents``, its
     ``WatchListClient`` feature) where the server allows it. This reflector keeps the
     paginated list: at 50,000 objects the streaming list took 11 to 12 s against 9 to 11 s,
     and half as much API-server CPU again (``docs/performance.md``, the larger scale). The
     streaming list is served from the watch cache however long the collection has been
     quiet; the paginated one reads its later pages from etcd then (the watch cache drops its
     snapshots at etcd's compaction), and took 39 s.
   * Later lists (after a watch ended in 410 Gone) ask for the last seen resourceVersion with
     ``resourceVersionMatch=NotOlderThan``. If that list itself fails with 410 (for example an
     expired ``continue`` token) it is retried at once from scratch (``""``), as upstream.

   * With a ``prompt_selector`` (a field selector) the first list is taken in two parts. The
     objects it selects are listed first; then the watch starts from that list's
     resourceVersion, over everything, and the reflector counts as *prompt-synced*. A second
     thread lists everything meanwhile and merges it into the sink behind the watch: an object
     is stored only if nothing newer of it is (by resourceVersion) and the watch has not
     deleted it since (:meth:`controller.store.Store.merge`), and until the watch has passed
     that list's resourceVersion its own changes are ordered the same way. The reflector
     counts as synced once the second list is merged. If the API server cannot select by
     that field (a CustomResourceDefinition without it among its ``selectableFields``: an
     HTTP 400) the first list is taken at once, as without a selector; if the second list
     fails, the reflector lists everything again.

2. **Watch** from the list's resourceVersion with ``allowWatchBookmarks=true`` and a random
   ``timeoutSeconds`` in [300, 600] so that many clients do not reconnect in step. Every event,
   bookmarks included, advances the tracked resourceVersion, so a re-watch or re-list resumes
   exactly where the stream stopped. When the server closes the watch normally the reflector
   watches again from there, without listing.

3. **410 Gone** (an HTTP 410 on the watch request, or an ``ERROR`` event with code 410) ends the
   watch and leads to a re-list at the last resourceVersion, within a second (client-go waits
   out its backoff first, which after an API-server restart has grown during the outage; a
   second expiry within a minute does back off). Connection failures, 429s and 5xxs while
   (re)starting a watch back off and watch again from the same resourceVersion. Any other
   error backs off and re-lists.

4. **Backoff** between attempts is exponential with jitter, from 0.8 s to 30 s, and starts
   again from 0.8 s once the reflector has gone two minutes without backing off
   (client-go's ``NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)``).

The reflector talks to the API through a :class:`ListerWatcher`, so it can be driven by a
scripted fake in tests; ``controller.listwatch.KubeListerWatcher`` is the real one.
"""

from __future__ import annotations

import builtins
import random
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from controller.clock import Clock, RealClock
from controller.store import Obj, resource_version
from controller.transform import Transform

log = structlog.get_logger("controller.reflector")

# client-go's page size. Larger pages list a large collection faster (restarts over 50,000 Runs
# were ready about 1.5 s sooner with 2,000 per page, as each request costs the API server more
# than its objects), but two pages in flight are held in full while they arrive and are decoded,
# and the heap keeps what they took: with 2,000 per page the RSS per cached Run at 10,000 Runs
# rose from 6.2 to as much as 8.4 kB, over its target (docs/performance.md, the larger scale).
PAGE_SIZE = 500
MIN_WATCH_TIMEOUT = 300
MAX_WATCH_TIMEOUT = 600
# A watch that ends this quickly without a single event is treated as a failure (client-go
# "very short watch"), so a server that closes watches at once cannot cause a hot loop.
VERY_SHORT_WATCH = 1.0
# A re-list after a 410 waits at most a second, unless the previous one was this recent.
QUICK_RELIST_INTERVAL = 60.0


class WatchStream(Protocol):
    """Decoded watch events (``{"type": ..., "object": {...}}``) from one watch request."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None:
        """Ends the stream; may be called from another thread to interrupt a blocked read."""
        ...


class ListerWatcher(Protocol):
    """Lists and watches one resource in one scope (a namespace, or all namespaces)."""

    def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int,
        continue_token: str | None,
        field_selector: str | None = None,
    ) -> Mapping[str, Any]:
        """Returns one page: a ``...List`` object with ``items`` and ``metadata``, of the
        objects ``field_selector`` selects when one is given.

        Its ``metadata`` is read first, and may be read without decoding the items."""
        ...

    def watch(self, *, resource_version: str, timeout_seconds: int) -> WatchStream:
        """Starts a watch with bookmarks from ``resource_version``."""
        ...


class ReflectorSink(Protocol):
    """Where a reflector delivers state: the informer, for one scope."""

    def replace(self, objs: list[Obj]) -> None: ...

    def apply(self, objs: list[Obj]) -> None:
        """Stores a page of a list in progress (adds and updates only; ``replace`` follows)."""
        ...

    def upsert(self, obj: Obj) -> None: ...

    def delete(self, obj: Obj) -> None: ...

    def begin_merge(self) -> None:
        """From now until ``end_merge`` or ``replace``, ``upsert`` and ``delete`` come from a
        watch that runs ahead of a list being merged: order them by resourceVersion."""
        ...

    def merge(self, objs: list[Obj]) -> None:
        """Stores a page of the list merged behind the watch (see ``begin_merge``)."""
        ...

    def end_merge(self) -> None: ...


class Backoff:
    """Exponential backoff with jitter that resets after a quiet period.

    Each :meth:`next` returns ``d * (1 + jitter * U[0, 1))`` capped at ``cap``, then doubles
    ``d`` (up to ``cap``). If more than ``reset_after`` seconds passed since the previous call,
    ``d`` starts again from ``initial``.
    """

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._initial = initial
        self._cap = cap
        self._factor = factor
        self._jitter = jitter
        self._reset_after = reset_after
        self._clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._duration = initial
        self._last: float | None = None

    def next(self) -> float:
        now = self._clock.monotonic()
        if self._last is None or now - self._last > self._reset_after:
            self._duration = self._initial
        self._last = now
        delay = self._duration * (1.0 + self._jitter * self._rng.random())
        self._duration = min(self._duration * self._factor, self._cap)
        return min(delay, self._cap)


@dataclass(frozen=True)
class _WatchEnded:
    """Why a watch stopped: ``expired`` means a re-list is needed."""

    expired: bool = False


class Reflector:
    """Keeps a :class:`ReflectorSink` in step with the API server for one resource and scope.

    Run it on a dedicated thread with :meth:`run`; :meth:`stop` ends it promptly (it closes the
    open watch). :attr:`has_synced` turns true once the first list has been delivered.
    """

    def __init__(
        self,
        name: str,
        lister_watcher: ListerWatcher,
        sink: ReflectorSink,
        *,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        page_size: int = PAGE_SIZE,
        min_watch_timeout: int = MIN_WATCH_TIMEOUT,
        max_watch_timeout: int = MAX_WATCH_TIMEOUT,
        transform: Transform | None = None,
        prompt_selector: str | None = None,
    ) -> None:
        self.name = name
        self._prompt_selector = prompt_selector
        # Applied to each object as it arrives (each list page, each watch event), so a re-list
        # never holds more than two pages of objects in their full form (the one being
        # transformed, the next one being fetched).
        self._transform = transform
        self._lw = lister_watcher
        self._sink = sink
        self._clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._backoff = backoff or Backoff(clock=self._clock, rng=self._rng)
        self._page_size = page_size
        self._min_watch_timeout = min_watch_timeout
        self._max_watch_timeout = max_watch_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._synced = threading.Event()
        self._prompt_synced = threading.Event()
        # The second part of a first list taken in two (see the module's docstring): its thread,
        # what cancels it, the resourceVersion the watch must pass before its changes are no
        # longer ordered against the list's, and whether it failed.
        self._rest: threading.Thread | None = None
        self._rest_cancel = threading.Event()
        self._merge_until: int | None = None
        self._rest_failed = threading.Event()
        self._last_sync_rv = ""
        # Set when a list at the last resourceVersion was itself expired: list from scratch.
        self._rv_unavailable = False
        self._log = log.bind(reflector=name)

    # ---- state --------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def prompt_synced(self) -> bool:
        """True once the objects of the prompt selector are listed (or everything is)."""
        return self._prompt_synced.is_set()

    def wait_for_prompt_sync(self, timeout: float | None = None) -> bool:
        return self._prompt_synced.wait(timeout)

    @property
    def last_sync_resource_version(self) -> str:
        """The resourceVersion the sink is known to reflect (from the last list or event)."""
        with self._lock:
            return self._last_sync_rv

    def _set_rv(self, rv: str) -> None:
        with self._lock:
            self._last_sync_rv = rv

    # ---- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        """Asks :meth:`run` to return and interrupts the watch it may be blocked in."""
        self._stop.set()
        self._rest_cancel.set()
        self._close_stream()

    def run(self) -> None:
        """Lists and watches until :meth:`stop`, backing off between failed attempts."""
        last_expiry: float | None = None
        while not self._stop.is_set():
            delay: float | None = None
            try:
                self.list_and_watch()
                # The watch expired (410). That is the normal end of a long-lived watch, not a
                # failure: re-list within a second instead of waiting out a backoff that an
                # outage just before may have grown. Expiries in quick succession back off.
                now = self._clock.monotonic()
                if last_expiry is None or now - last_expiry > QUICK_RELIST_INTERVAL:
                    delay = self._rng.uniform(0.0, 1.0)
                last_expiry = now
            except Exception as err:
                if self._stop.is_set():
                    break
                self._log.warning("list and watch failed", error=_describe(err))
            if self._stop.is_set():
                break
            self._stop.wait(self._backoff.next() if delay is None else delay)
        # A second list still running ends with this thread, so joining it waits for both.
        self._cancel_rest()

    def list_and_watch(self) -> None:
        """One list followed by watches until the watch needs a re-list (410) or fails."""
        self.list()
        while not self._stop.is_set():
            if self._rest_failed.is_set():
                self._rest_failed.clear()
                raise RestListError(f"the rest of the first list of {self.name} failed")
            try:
                ended = self._watch()
            except Exception as err:
                if self._stop.is_set():
                    return
                if _is_expired(err):
                    # HTTP 410 on the watch request itself (rather than as an ERROR event).
                    self._log.info(
                        "watch request expired, re-listing", resource_version=self.last_sync_resource_version
                    )
                    return
                if _is_retryable_watch_error(err):
                    # The server is unreachable or throttling us: wait, then resume the watch
                    # from the same resourceVersion (no need to list again).
                    self._log.info("watch failed, retrying", error=_describe(err))
                    self._stop.wait(self._backoff.next())
                    continue
                raise
            if ended.expired:
                self._log.info("watch expired, re-listing", resource_version=self.last_sync_resource_version)
                return

    # ---- list ---------------------------------------------------------------------------

    def list(self) -> None:
        """Lists everything in scope and replaces the sink's contents with it (the first time
        with a prompt selector: the selected objects, the rest following behind the watch)."""
        self._cancel_rest()
        if self._prompt_selector and not self._prompt_synced.is_set() and self._list_prompt_first():
            return
        rv = "" if self._rv_unavailable else self.last_sync_resource_version
        try:
            objs, list_rv = self._list_at(rv)
        except ApiException as err:
            if not (_is_expired(err) or _is_too_large_rv(err)) or rv == "":
                raise
            self._rv_unavailable = True
            self._log.info(
                "list at last resource version expired, listing from scratch", error=_describe(err)
            )
            objs, list_rv = self._list_at("")
        self._rv_unavailable = False
        self._sink.replace(objs)
        self._set_rv(list_rv)
        self._synced.set()
        self._prompt_synced.set()

    def _list_prompt_first(self) -> bool:
        """Lists the prompt selector's objects and starts listing the rest on a thread of its
        own; returns False if the server cannot select them (then everything is listed)."""
        started = self._clock.monotonic()
        try:
            prompt, list_rv = self._list_at("", field_selector=self._prompt_selector)
        except ApiException as err:
            if err.status != 400:
                raise
            self._log.warning(
                "cannot list some objects first, listing them all at once",
                selector=self._prompt_selector,
                error=_describe(err),
            )
            self._prompt_selector = None
            return False
        if not list_rv.isdigit():
            # The merge orders by resourceVersion, which this server does not number.
            self._log.warning("resourceVersions are not integers, listing everything at once", rv=list_rv)
            self._prompt_selector = None
            return False
        # A failed attempt before this one may have stored objects since deleted.
        self._sink.replace(prompt)
        self._sink.begin_merge()
        self._set_rv(list_rv)
        self._prompt_synced.set()
        self._log.info(
            "listed the prompt objects, listing the rest behind the watch",
            selector=self._prompt_selector,
            objects=len(prompt),
            seconds=round(self._clock.monotonic() - started, 3),
        )
        self._rest_cancel = cancel = threading.Event()
        self._rest = threading.Thread(
            target=self._list_rest, args=(cancel, started), name=f"reflector-{self.name}", daemon=True
        )
        self._rest.start()
        return True

    def _list_rest(self, cancel: threading.Event, started: float) -> None:
        """The second part of a first list taken in two: everything, merged behind the watch."""
        try:
            _, list_rv = self._list_at("", merge=True, cancel=cancel)
        except Exception as err:
            if cancel.is_set() or self._stop.is_set():
                return
            self._log.warning("listing the rest failed, listing everything again", error=_describe(err))
            self._rest_failed.set()
            self._close_stream()
            return
        with self._lock:
            self._merge_until = int(list_rv) if list_rv.isdigit() else 0
        self._synced.set()
        self._log.info("listed everything", seconds=round(self._clock.monotonic() - started, 3))
        self._end_merge_once_caught_up()

    def _end_merge_once_caught_up(self) -> None:
        """Ends the merge's ordering once the watch has passed the merged list's version."""
        with self._lock:
            until = self._merge_until
            if until is None or not (self._last_sync_rv.isdigit() and int(self._last_sync_rv) >= until):
                return
            self._merge_until = None
        self._sink.end_merge()

    def _cancel_rest(self) -> None:
        """Stops a second list still running (a re-list replaces what it would have merged)."""
        rest, self._rest = self._rest, None
        if rest is not None:
            self._rest_cancel.set()
            rest.join()
        with self._lock:
            self._merge_until = None

    def _list_at(
        self,
        rv: str,
        *,
        field_selector: str | None = None,
        merge: bool = False,
        cancel: threading.Event | None = None,
    ) -> tuple[builtins.list[Obj], str]:
        # The next page is asked for as soon as this one's continue token is known, before this
        # page is decoded (the token is read from the end of the encoded page), and the API
        # server prepares it while this page's objects are decoded, transformed, stored and
        # handed to the handlers: on a restart over many objects the two processes work at once
        # instead of in turn. A list that fails part way leaves what it stored: every object
        # stored is the server's at a version no older than the cache's, and the next list
        # replaces the whole scope.
        objs: builtins.list[Obj] = []
        # Named like the reflector's own thread (with "_0" after it), so that its CPU counts
        # with the reflector's (controller.threadcpu) while a scrape finds it running.
        with ThreadPoolExecutor(1, thread_name_prefix=f"reflector-{self.name}") as fetcher:
            page = self._lw.list(
                resource_version=rv,
                resource_version_match="NotOlderThan" if rv else None,
                limit=self._page_size,
                continue_token=None,
                field_selector=field_selector,
            )
            while True:
                metadata = page.get("metadata") or {}
                continue_token = metadata.get("continue") or None
                following = (
                    # The continue token encodes the resourceVersion of the first page.
                    fetcher.submit(
                        self._lw.list,
                        resource_version=None,
                        resource_version_match=None,
                        limit=self._page_size,
                        continue_token=continue_token,
                        field_selector=field_selector,
                    )
                    if continue_token is not None
                    else None
                )
                items = _with_type_meta(page)
                if self._transform:
                    items = [self._transform(item) for item in items]
                if merge:
                    self._sink.merge(items)
                else:
                    self._sink.apply(items)
                    objs.extend(items)
                if following is None:
                    return objs, metadata.get("resourceVersion") or ""
                if self._stop.is_set() or (cancel is not None and cancel.is_set()):
                    raise InterruptedError("reflector stopped while listing")
                page = following.result()

    # ---- watch --------------------------------------------------------------------------

    def _watch(self) -> _WatchEnded:
        timeout = self._rng.randint(self._min_watch_timeout, self._max_watch_timeout)
        stream = self._lw.watch(resource_version=self.last_sync_resource_version, timeout_seconds=timeout)
        with self._lock:
            self._stream = stream
        if self._stop.is_set():
            self._close_stream()
            return _WatchEnded()
        started = self._clock.monotonic()
        events = 0
        try:
            for event in stream:
                if self._stop.is_set():
                    return _WatchEnded()
                if self._handle(event):
                    return _WatchEnded(expired=True)
                events += 1
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, OSError) as err:
            if self._stop.is_set():
                return _WatchEnded()
            # The stream broke (server restart, network): watch again from where it stopped.
            # If the server is really gone, the next watch request fails and backs off.
            self._log.info("watch stream broken", error=_describe(err), events=events)
            if events == 0:
                raise
            return _WatchEnded()
        finally:
            self._close_stream()
        if events == 0 and self._clock.monotonic() - started < VERY_SHORT_WATCH and not self._stop.is_set():
            raise VeryShortWatchError(f"watch of {self.name} closed immediately with no events")
        return _WatchEnded()

    def _handle(self, event: Mapping[str, Any]) -> bool:
        """Applies one watch event; returns whether the watch expired (410)."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            err = status_error(obj)
            if _is_expired(err):
                return True
            raise err
        if kind in ("ADDED", "MODIFIED"):
            self._sink.upsert(self._transform(obj) if self._transform else obj)
        elif kind == "DELETED":
            self._sink.delete(self._transform(obj) if self._transform else obj)
        elif kind != "BOOKMARK":
            self._log.warning("unknown watch event type", type=kind)
            return False
        rv = resource_version(obj)
        if rv:
            self._set_rv(rv)
            if self._merge_until is not None:
                self._end_merge_once_caught_up()
        return False

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception as err:  # closing is best effort; the stream is abandoned anyway
                self._log.debug("closing watch stream failed", error=_describe(err))


class RestListError(RuntimeError):
    """The second part of a first list taken in two failed: everything is listed again."""


class VeryShortWatchError(RuntimeError):
    """A watch ended within a second without delivering anything."""


def status_error(status: Mapping[str, Any]) -> ApiException:
    """Converts a ``Status`` object (an ``ERROR`` watch event's payload) into an ApiException."""
    err = ApiException(status=int(status.get("code") or 500), reason=status.get("reason") or "")
    err.body = status.get("message") or ""
    return err


def _with_type_meta(page: Mapping[str, Any]) -> list[Obj]:
    """Returns the page's items with ``apiVersion``/``kind`` filled in.

    List responses of built-in types omit them on each item; watch events carry them. Filling
    them in keeps cached objects uniform (e.g. for an Event's ``involvedObject``).
    """
    items = page.get("items") or []
    api_version = page.get("apiVersion")
    list_kind = page.get("kind") or ""
    kind = list_kind[: -len("List")] if list_kind.endswith("List") else None
    for item in items:
        if api_version and "apiVersion" not in item:
            item["apiVersion"] = api_version
        if kind and "kind" not in item:
            item["kind"] = kind
    return items


def _is_expired(err: BaseException) -> bool:
    return isinstance(err, ApiException) and err.status == 410


def _is_too_large_rv(err: BaseException) -> bool:
    # The server is behind the requested resourceVersion (e.g. restored from a backup).
    return (
        isinstance(err, ApiException)
        and err.status == 504
        and "too large resource version" in str(err.body or "").lower()
    )


def _is_retryable_watch_error(err: BaseException) -> bool:
    if isinstance(err, ApiException):
        return err.status in (0, 429) or (err.status or 0) >= 500
    return isinstance(err, urllib3.exceptions.HTTPError | OSError | VeryShortWatchError)


def _describe(err: BaseException) -> str:
    if isinstance(err, ApiException):
        return f"{err.status} {err.reason}: {str(err.body or '')[:200]}".strip()
    return f"{type(err).__name__}: {err}"
