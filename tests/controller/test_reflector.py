"""Reflector, informer and store behaviour against a scripted lister-watcher (no server).

The integration tests (test_informer_apiserver.py) check the same behaviour against a real API
server; these pin down the cases a real server cannot be made to produce on demand, such as a
re-list at the last resourceVersion that itself expires.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.clock import FakeClock
from controller.informer import EventHandlerFuncs, Informer
from controller.keys import DeletedFinalStateUnknown, ObjectKey
from controller.reflector import Backoff, Reflector, RestListError
from controller.resource import CONFIGMAPS
from controller.store import Store


class EndOfScript(Exception):
    """The scripted server has nothing more to say."""


def cm(name: str, rv: str, namespace: str = "ns", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "data": data,
    }


def page(items: list[dict[str, Any]], rv: str, cont: str | None = None) -> dict[str, Any]:
    bare = [{k: v for k, v in item.items() if k not in ("apiVersion", "kind")} for item in items]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "metadata": {"resourceVersion": rv, "continue": cont},
        "items": bare,
    }


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def bookmark(rv: str) -> dict[str, Any]:
    return event("BOOKMARK", {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": rv}})


def gone() -> dict[str, Any]:
    return event(
        "ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}
    )


class Stream:
    def __init__(self, events: list[Any]) -> None:
        self._events = events
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._events:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.closed = True


class ScriptedListerWatcher:
    """Answers list and watch calls from scripts and records how it was called."""

    def __init__(self) -> None:
        self.lists: deque[dict[str, Any] | BaseException] = deque()
        self.watches: deque[list[Any] | BaseException] = deque()
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []

    def list(self, **options: Any) -> dict[str, Any]:
        # Recorded without a field selector that selects nothing, as the request is.
        if options.get("field_selector") is None:
            options.pop("field_selector", None)
        self.list_calls.append(options)
        if not self.lists:
            raise EndOfScript("no more lists")
        answer = self.lists.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def watch(self, **options: Any) -> Stream:
        self.watch_calls.append(options)
        if not self.watches:
            raise EndOfScript("no more watches")
        answer = self.watches.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return Stream(answer)


class Recorder:
    """An event handler that records what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.events.append(("add", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.events.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key.name, obj.obj["metadata"]["resourceVersion"]))
        else:
            self.events.append(("delete", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


def informer_with(lw: ScriptedListerWatcher, namespaces: tuple[str, ...] = ()) -> tuple[Informer, Recorder]:
    informer = Informer(CONFIGMAPS, lambda ns: lw, namespaces=namespaces, clock=FakeClock())
    recorder = Recorder()
    informer.add_event_handler(recorder)
    return informer, recorder


def reflector_of(informer: Informer) -> Reflector:
    (reflector,) = informer.reflectors
    return reflector


def run_until_script_ends(reflector: Reflector) -> None:
    with pytest.raises(EndOfScript):
        reflector.list_and_watch()


# ---- list -------------------------------------------------------------------------------------


def tell_when_asked_for(lw: ScriptedListerWatcher, continue_token: str, asked: threading.Event) -> None:
    """Sets ``asked`` when the page of that continue token is asked for."""
    listing = lw.list

    def list_and_tell(**options: Any) -> dict[str, Any]:
        if options["continue_token"] == continue_token:
            asked.set()
        return listing(**options)

    lw.list = list_and_tell  # type: ignore[method-assign]


def test_the_next_page_is_asked_for_while_this_one_is_transformed() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.extend([page([cm("a", "5")], "10", cont="tok"), page([cm("b", "7")], "10")])
    asked_for_the_next = threading.Event()
    tell_when_asked_for(lw, "tok", asked_for_the_next)
    seen_while_transforming: list[tuple[str, bool]] = []

    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        seen_while_transforming.append((name, name != "a" or asked_for_the_next.wait(timeout=10)))
        return obj

    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock(), transform=transform)
    run_until_script_ends(reflector_of(informer))
    assert seen_while_transforming == [("a", True), ("b", True)]
    assert informer.has_synced()


class EncodedPage(dict[str, Any]):
    """A page whose items, when read, record whether the next page had been asked for."""

    def __init__(self, content: dict[str, Any], asked_for_the_next: threading.Event) -> None:
        super().__init__(content)
        self.items_read_after_the_next_was_asked: list[bool] = []
        self._asked = asked_for_the_next

    def get(self, key: str, default: Any = None) -> Any:
        if key == "items":
            self.items_read_after_the_next_was_asked.append(self._asked.wait(timeout=10))
        return super().get(key, default)


def test_the_next_page_is_asked_for_before_this_one_is_decoded() -> None:
    asked_for_the_next = threading.Event()
    first = EncodedPage(page([cm("a", "5")], "10", cont="tok"), asked_for_the_next)
    lw = ScriptedListerWatcher()
    lw.lists.extend([first, page([cm("b", "7")], "10")])
    tell_when_asked_for(lw, "tok", asked_for_the_next)
    informer, recorder = informer_with(lw)
    run_until_script_ends(reflector_of(informer))
    assert first.items_read_after_the_next_was_asked == [True]
    assert recorder.events == [("add", "a", "5"), ("add", "b", "7")]


def test_each_page_reaches_the_cache_and_the_handlers_while_the_next_is_fetched() -> None:
    # The second page is answered only once the first one's object was delivered: a reflector
    # that delivered the list only when whole would never get it (and fail after 10 s).
    lw = ScriptedListerWatcher()
    lw.lists.extend([page([cm("a", "5")], "10", cont="tok"), page([cm("b", "7")], "10")])
    first_delivered = threading.Event()
    listing = lw.list

    def second_page_after_the_first_is_delivered(**options: Any) -> dict[str, Any]:
        if options["continue_token"] == "tok" and not first_delivered.wait(timeout=10):
            raise AssertionError("the first page was not delivered before the list ended")
        return listing(**options)

    lw.list = second_page_after_the_first_is_delivered  # type: ignore[method-assign]
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock())
    seen: list[tuple[str, bool, bool]] = []

    def on_add(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        seen.append((name, informer.get(ObjectKey("ns", name)) is obj, informer.has_synced()))
        first_delivered.set()

    informer.add_event_handler(EventHandlerFuncs(add=on_add))
    run_until_script_ends(reflector_of(informer))
    assert seen == [("a", True, False), ("b", True, False)], "stored and delivered, not synced yet"
    assert informer.has_synced()


def test_initial_list_is_paginated_consistent_and_syncs() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.extend([page([cm("a", "5")], "10", cont="tok"), page([cm("b", "7")], "10")])
    informer, recorder = informer_with(lw)
    reflector = reflector_of(informer)
    assert not informer.has_synced()
    run_until_script_ends(reflector)
    assert lw.list_calls == [
        {"resource_version": "", "resource_version_match": None, "limit": 500, "continue_token": None},
        {"resource_version": None, "resource_version_match": None, "limit": 500, "continue_token": "tok"},
    ]
    assert informer.has_synced()
    assert reflector.last_sync_resource_version == "10"
    assert recorder.events == [("add", "a", "5"), ("add", "b", "7")]
    cached = informer.get(ObjectKey("ns", "a"))
    assert cached is not None and cached["kind"] == "ConfigMap" and cached["apiVersion"] == "v1"


def test_watch_starts_at_list_version_with_bookmarks_and_tracks_every_event() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([], "10"))
    lw.watches.append([event("ADDED", cm("a", "11")), bookmark("15")])
    informer, recorder = informer_with(lw)
    reflector = reflector_of(informer)
    run_until_script_ends(reflector)
    assert lw.watch_calls[0]["resource_version"] == "10"
    assert 300 <= lw.watch_calls[0]["timeout_seconds"] <= 600
    assert lw.watch_calls[1]["resource_version"] == "15", "a normal end re-watches from the bookmark"
    assert len(lw.list_calls) == 1, "a normal end of the watch does not re-list"
    assert reflector.last_sync_resource_version == "15"
    assert recorder.events == [("add", "a", "11")]


def test_watch_timeouts_are_randomised() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([], "1"))
    lw.watches.extend([[bookmark(str(i))] for i in range(2, 30)])
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock())
    run_until_script_ends(reflector_of(informer))
    timeouts = {call["timeout_seconds"] for call in lw.watch_calls}
    assert len(timeouts) > 1
    assert all(300 <= t <= 600 for t in timeouts)


@pytest.mark.parametrize(
    "expiry",
    [pytest.param([gone()], id="ERROR event 410"), pytest.param(ApiException(status=410), id="HTTP 410")],
)
def test_gone_relists_at_the_last_resource_version(expiry: Any) -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([cm("a", "5")], "10"))
    lw.watches.append([event("MODIFIED", cm("a", "12")), bookmark("20")])
    lw.watches.append(expiry)
    informer, recorder = informer_with(lw)
    reflector = reflector_of(informer)
    reflector.list_and_watch()  # returns: the watch expired
    assert len(lw.list_calls) == 1
    lw.lists.append(page([cm("a", "12"), cm("b", "21")], "22"))
    run_until_script_ends(reflector)
    assert lw.list_calls[1] == {
        "resource_version": "20",
        "resource_version_match": "NotOlderThan",
        "limit": 500,
        "continue_token": None,
    }
    assert recorder.events == [("add", "a", "5"), ("update", "a", "12"), ("add", "b", "21")], (
        "the re-list delivers only the change it found: nothing lost, nothing repeated"
    )
    assert lw.watch_calls[-1]["resource_version"] == "22"


def test_relist_expired_at_last_version_falls_back_to_a_full_list_at_once() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([cm("a", "5")], "10"))
    lw.watches.append([gone()])
    informer, _ = informer_with(lw)
    reflector = reflector_of(informer)
    reflector.list_and_watch()
    lw.lists.extend([ApiException(status=410), page([cm("a", "5")], "30")])
    run_until_script_ends(reflector)
    assert [c["resource_version"] for c in lw.list_calls] == ["", "10", ""]
    assert reflector.last_sync_resource_version == "30"


def test_expired_continue_token_restarts_the_list_from_scratch() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([], "10"))
    lw.watches.append([gone()])
    informer, _ = informer_with(lw)
    reflector = reflector_of(informer)
    reflector.list_and_watch()
    lw.lists.extend(
        [page([cm("a", "5")], "40", cont="old"), ApiException(status=410), page([cm("a", "5")], "41")]
    )
    run_until_script_ends(reflector)
    assert [(c["resource_version"], c["continue_token"]) for c in lw.list_calls] == [
        ("", None),
        ("10", None),
        (None, "old"),
        ("", None),
    ]


def test_objects_gone_from_a_relist_are_delivered_as_tombstones() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([cm("a", "5"), cm("b", "6"), cm("c", "7")], "10"))
    lw.watches.append([gone()])
    informer, recorder = informer_with(lw)
    reflector = reflector_of(informer)
    reflector.list_and_watch()
    lw.lists.append(page([cm("a", "5"), cm("c", "12")], "13"))
    run_until_script_ends(reflector)
    # Changes are delivered page by page as the list arrives, then what the whole list lacks
    # (client-go's DeltaFIFO.Replace: the listed objects, then the deletions).
    assert recorder.events[3:] == [("update", "c", "12"), ("tombstone", "b", "6")]
    assert informer.get(ObjectKey("ns", "b")) is None


def test_watch_connection_failures_back_off_and_resume_without_relisting() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([], "10"))
    lw.watches.extend(
        [
            ConnectionRefusedError(),
            ApiException(status=429),
            [event("ADDED", cm("a", "11"))],
            ApiException(status=503),
        ]
    )
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock())
    reflector = Reflector("cm", lw, _sink(informer), backoff=Backoff(0.0, 0.0))
    run_until_script_ends(reflector)
    assert len(lw.list_calls) == 1
    assert [c["resource_version"] for c in lw.watch_calls] == ["10", "10", "10", "11", "11"]


def test_other_watch_errors_end_list_and_watch() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([], "10"))
    lw.watches.append([event("ERROR", {"kind": "Status", "code": 403, "reason": "Forbidden"})])
    informer, _ = informer_with(lw)
    with pytest.raises(ApiException) as raised:
        reflector_of(informer).list_and_watch()
    assert raised.value.status == 403


def _sink(informer: Informer) -> Any:
    from controller.informer import _ScopedSink

    return _ScopedSink(informer, None)


# ---- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_caps_and_resets_after_a_quiet_period() -> None:
    clock = FakeClock()
    rng = random.Random(7)
    backoff = Backoff(clock=clock, rng=rng)
    delays = [backoff.next() for _ in range(8)]
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base - 1e-9 <= delay <= min(2 * base, 30.0) + 1e-9, (delay, base)
    assert any(delay > base + 1e-6 for delay, base in zip(delays[:5], bases, strict=False)), "jittered"
    clock.step(121)
    assert backoff.next() < 1.6 + 1e-9, "two quiet minutes reset the backoff"


# ---- informer ----------------------------------------------------------------------------------


def test_a_late_handler_gets_the_cache_replayed_as_adds() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([cm("a", "1"), cm("b", "2")], "3"))
    informer, _ = informer_with(lw)
    run_until_script_ends(reflector_of(informer))
    late = Recorder()
    informer.add_event_handler(late)
    assert sorted(late.events) == [("add", "a", "1"), ("add", "b", "2")]


def test_a_failing_handler_does_not_stop_the_others() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([cm("a", "1")], "3"))
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock())

    def explode(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_event_handler(EventHandlerFuncs(add=explode))
    recorder = Recorder()
    informer.add_event_handler(recorder)
    run_until_script_ends(reflector_of(informer))
    assert recorder.events == [("add", "a", "1")]


def test_namespaced_scopes_replace_only_their_own_namespace() -> None:
    scripts = {"one": ScriptedListerWatcher(), "two": ScriptedListerWatcher()}
    scripts["one"].lists.append(page([cm("a", "1", namespace="one")], "5"))
    scripts["two"].lists.append(page([cm("b", "2", namespace="two")], "5"))
    informer = Informer(CONFIGMAPS, lambda ns: scripts[ns], namespaces=("one", "two"), clock=FakeClock())
    for reflector in informer.reflectors:
        run_until_script_ends(reflector)
    assert informer.has_synced()
    scripts["one"].lists.append(page([], "9"))
    run_until_script_ends(informer.reflectors[0])
    assert informer.store.list_keys() == [ObjectKey("two", "b")]


def test_store_indexes_follow_updates_and_deletes() -> None:
    store = Store(
        {"by-ref": lambda obj: [f"{obj['metadata']['namespace']}/{r}" for r in obj.get("refs", [])]}
    )
    store.upsert({**cm("run1", "1"), "refs": ["rc1"]})
    store.upsert({**cm("run2", "1"), "refs": ["rc1", "rc2"]})
    assert store.index_keys("by-ref", "ns/rc1") == [ObjectKey("ns", "run1"), ObjectKey("ns", "run2")]
    store.upsert({**cm("run2", "2"), "refs": ["rc2"]})
    assert store.index_keys("by-ref", "ns/rc1") == [ObjectKey("ns", "run1")]
    store.delete(ObjectKey("ns", "run1"))
    assert store.index_keys("by-ref", "ns/rc1") == []
    assert store.index_values("by-ref") == ["ns/rc2"]
    assert [o["metadata"]["name"] for o in store.by_index("by-ref", "ns/rc2")] == ["run2"]


def test_an_indexer_added_later_indexes_what_is_cached() -> None:
    store = Store()
    store.upsert({**cm("run1", "1"), "refs": ["rc1"]})
    store.add_indexer("by-ref", lambda obj: obj.get("refs", []))
    assert store.index_keys("by-ref", "rc1") == [ObjectKey("ns", "run1")]
    with pytest.raises(KeyError):
        store.by_index("missing", "x")


# ---- a first list in two parts (a prompt selector) --------------------------------------------

SELECTOR = "status.done="


class Gate:
    """A watch-script item: the stream waits here until ``condition`` holds."""

    def __init__(self, condition: Any) -> None:
        self.condition = condition


class GatedStream(Stream):
    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._events:
            if isinstance(item, Gate):
                wait_for(item.condition)
                continue
            if isinstance(item, BaseException):
                raise item
            yield item


class SplitListerWatcher(ScriptedListerWatcher):
    """Answers the prompt selector's lists and the others from separate scripts; a list of
    everything waits for ``release`` (the test lets the watch run ahead of it first)."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt_lists: deque[dict[str, Any] | BaseException] = deque()
        self.release = threading.Event()
        self.release.set()

    def list(self, **options: Any) -> dict[str, Any]:
        if options.get("field_selector") == SELECTOR:
            self.list_calls.append(options)
            answer = self.prompt_lists.popleft()
            if isinstance(answer, BaseException):
                raise answer
            return answer
        assert self.release.wait(timeout=10), "the test never released the list of everything"
        return super().list(**options)

    def watch(self, **options: Any) -> Stream:
        self.watch_calls.append(options)
        if not self.watches:
            raise EndOfScript("no more watches")
        answer = self.watches.popleft()
        assert isinstance(answer, list)
        return GatedStream(answer)


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not condition():
            assert not done.wait(0.005), "condition not met in time"
    finally:
        deadline.cancel()


def split_informer(lw: SplitListerWatcher) -> tuple[Informer, Recorder]:
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock(), prompt_selector=SELECTOR)
    recorder = Recorder()
    informer.add_event_handler(recorder)
    return informer, recorder


def cached(informer: Informer) -> dict[str, str]:
    return {obj["metadata"]["name"]: obj["metadata"]["resourceVersion"] for obj in informer.list()}


def test_the_prompt_objects_are_listed_first_and_the_watch_runs_ahead_of_the_rest() -> None:
    lw = SplitListerWatcher()
    lw.prompt_lists.append(page([cm("a", "5")], "10"))
    # Everything, as read at resourceVersion 10: before the watch's changes below.
    lw.lists.append(page([cm("a", "5"), cm("b", "3"), cm("c", "9"), cm("d", "8")], "10"))
    lw.release.clear()
    informer, recorder = split_informer(lw)
    reflector = reflector_of(informer)
    lw.watches.append(
        [
            Gate(lambda: informer.prompt_synced() and not informer.has_synced()),
            event("MODIFIED", cm("c", "11")),
            event("DELETED", cm("d", "12")),
            event("ADDED", cm("e", "13")),
            Gate(lambda: lw.release.set() or informer.has_synced()),
            bookmark("20"),
            event("DELETED", cm("b", "21")),
        ]
    )
    run_until_script_ends(reflector)

    assert lw.list_calls[0]["field_selector"] == SELECTOR
    assert lw.watch_calls[0]["resource_version"] == "10"
    # The list's older c and deleted d lose to the watch; b arrives from the list; after the
    # watch passed the list's version, its deletion of b is an ordinary one.
    assert cached(informer) == {"a": "5", "c": "11", "e": "13"}
    assert recorder.events == [
        ("add", "a", "5"),
        ("add", "c", "11"),
        ("add", "e", "13"),
        ("add", "b", "3"),
        ("delete", "b", "21"),
    ]


def test_a_rest_list_newer_than_the_watch_is_not_rolled_back_by_it() -> None:
    lw = SplitListerWatcher()
    lw.prompt_lists.append(page([cm("a", "5")], "10"))
    lw.lists.append(page([cm("a", "5"), cm("c", "14"), cm("f", "14")], "15"))
    informer, recorder = split_informer(lw)
    lw.watches.append(
        [
            Gate(informer.has_synced),
            event("MODIFIED", cm("c", "11")),
            event("MODIFIED", cm("c", "14")),
            event("DELETED", cm("c", "16")),
        ]
    )
    run_until_script_ends(reflector_of(informer))

    assert cached(informer) == {"a": "5", "f": "14"}
    assert [e for e in recorder.events if e[1] == "c"] == [("add", "c", "14"), ("delete", "c", "16")]


def test_an_object_created_again_after_a_deletion_survives_the_merge() -> None:
    lw = SplitListerWatcher()
    lw.prompt_lists.append(page([], "10"))
    lw.lists.append(page([cm("x", "7")], "10"))
    lw.release.clear()
    informer, recorder = split_informer(lw)
    lw.watches.append(
        [
            event("DELETED", cm("x", "11")),
            event("ADDED", cm("x", "12")),
            Gate(lambda: lw.release.set() or informer.has_synced()),
        ]
    )
    run_until_script_ends(reflector_of(informer))

    assert cached(informer) == {"x": "12"}
    assert recorder.events == [("add", "x", "12")]


def test_a_server_that_cannot_select_by_the_field_gets_one_list_of_everything() -> None:
    lw = SplitListerWatcher()
    lw.prompt_lists.append(ApiException(status=400, reason="BadRequest"))
    lw.lists.append(page([cm("a", "5"), cm("b", "3")], "10"))
    lw.watches.append([])
    informer, _ = split_informer(lw)
    reflector = reflector_of(informer)
    with pytest.raises(EndOfScript):
        reflector.list_and_watch()
    assert informer.has_synced() and informer.prompt_synced()
    assert cached(informer) == {"a": "5", "b": "3"}
    assert [call.get("field_selector") for call in lw.list_calls] == [SELECTOR, None]
    assert lw.watch_calls[0]["resource_version"] == "10"


def test_when_the_rest_fails_everything_is_listed_again_and_replaces_the_cache() -> None:
    lw = SplitListerWatcher()
    lw.prompt_lists.append(page([cm("a", "5"), cm("g", "6")], "10"))
    lw.lists.extend(
        [ApiException(status=500, reason="InternalError"), page([cm("a", "5"), cm("b", "3")], "30")]
    )
    lw.release.clear()
    informer, recorder = split_informer(lw)
    reflector = reflector_of(informer)
    # The list of everything fails once the watch runs, and closes it.
    lw.watches.append([Gate(lambda: lw.release.set() or reflector._rest_failed.is_set())])
    with pytest.raises(RestListError):
        reflector.list_and_watch()
    assert informer.prompt_synced() and not informer.has_synced()

    lw.watches.append([])
    with pytest.raises(EndOfScript):
        reflector.list_and_watch()
    assert informer.has_synced()
    assert cached(informer) == {"a": "5", "b": "3"}
    assert ("tombstone", "g", "6") in recorder.events
    assert lw.list_calls[-1].get("field_selector") is None
