"""Informers against a real kube-apiserver: sync, ordering, bookmarks, 410 re-lists, restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiException

from controller.informer import Informer
from controller.keys import DeletedFinalStateUnknown, ObjectKey
from controller.kube import Kube
from controller.listwatch import KubeListerWatcher
from controller.manager import Manager
from controller.resource import CONFIGMAPS, Resource
from controller.transform import LAST_APPLIED_ANNOTATION, strip_for_cache
from kfp_devstack.waiting import wait_until
from kfp_operator import settings as cfg
from reconcilers.api import RUN_CONFIGURATIONS, RUNS, UNCOMPLETED_RUNS
from tests.support.objects import API_VERSION, SEED_SPEC

pytestmark = pytest.mark.timeout(180)


class Recorder:
    """Records handler calls as (kind, name, resourceVersion), thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[str, str, str]] = []

    def _add(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((kind, obj["metadata"]["name"], obj["metadata"].get("resourceVersion", "")))

    def on_add(self, obj: dict[str, Any]) -> None:
        self._add("add", obj)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._add("update", new)

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self._add("tombstone", dict(obj.obj))
        else:
            self._add("delete", obj)

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self.events)

    def of(self, name: str) -> list[tuple[str, str]]:
        return [(kind, rv) for kind, n, rv in self.snapshot() if n == name]


class GatedListerWatcher:
    """A real lister-watcher whose watches the test can cut and hold back (a network partition)."""

    def __init__(self, inner: KubeListerWatcher) -> None:
        self._inner = inner
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []

    def list(self, **options: Any) -> dict[str, Any]:
        self.list_calls.append(options)
        return self._inner.list(**options)

    def watch(self, **options: Any) -> Any:
        while True:
            self._open.wait()
            stream = self._inner.watch(**options)
            with self._lock:
                if self._open.is_set():
                    self._streams.append(stream)
                    self.watch_calls.append(options)
                    return stream
            stream.close()  # cut while it was connecting: hold it back too

    def cut(self) -> None:
        """Closes the open watch and holds new ones back until :meth:`restore`."""
        with self._lock:
            self._open.clear()
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.close()

    def restore(self) -> None:
        self._open.set()


def configmap(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def update(kube: Kube, namespace: str, name: str, **data: str) -> dict[str, Any]:
    return kube.patch(CONFIGMAPS, ObjectKey(namespace, name), {"data": data})


def rv(obj: dict[str, Any]) -> str:
    return obj["metadata"]["resourceVersion"]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()


def test_initial_sync_is_paginated_and_changes_arrive_in_order(
    kube: Kube, namespace: str, make_informer: Any, recorder: Recorder
) -> None:
    before = [kube.create(CONFIGMAPS, configmap(namespace, f"cm-{i}")) for i in range(5)]
    gated = GatedListerWatcher(KubeListerWatcher(kube, CONFIGMAPS, namespace))
    informer: Informer = make_informer(CONFIGMAPS, (namespace,), lister_watcher=gated, page_size=2)
    informer.add_event_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(30)
    assert len(gated.list_calls) == 3, "5 objects in pages of 2"
    assert gated.list_calls[1]["continue_token"], "later pages follow the continue token"
    assert sorted(recorder.snapshot()) == sorted(("add", o["metadata"]["name"], rv(o)) for o in before)

    created = kube.create(CONFIGMAPS, configmap(namespace, "new"))
    first = update(kube, namespace, "cm-0", step="1")
    second = update(kube, namespace, "cm-0", step="2")
    assert kube.delete(CONFIGMAPS, ObjectKey(namespace, "cm-1"))
    wait_until(
        lambda: ("delete", "cm-1") in [(k, n) for k, n, _ in recorder.snapshot()],
        timeout=30,
        message="delete",
    )

    assert recorder.of("new") == [("add", rv(created))]
    assert recorder.of("cm-0") == [("add", rv(before[0])), ("update", rv(first)), ("update", rv(second))]
    assert [kind for kind, _ in recorder.of("cm-1")] == ["add", "delete"]
    assert informer.get(ObjectKey(namespace, "cm-0"))["data"] == {"step": "2"}  # type: ignore[index]
    assert ObjectKey(namespace, "cm-1") not in informer.store
    assert len(gated.list_calls) == 3, "no re-list in a healthy watch"


def test_bookmarks_advance_the_resource_version(
    kube: Kube, namespace: str, make_informer: Any, recorder: Recorder
) -> None:
    # A short server-side timeout makes the server send a bookmark about 2 s before it.
    watching = GatedListerWatcher(KubeListerWatcher(kube, CONFIGMAPS, namespace))
    informer: Informer = make_informer(
        CONFIGMAPS, (namespace,), lister_watcher=watching, watch_timeout=(5, 5)
    )
    informer.add_event_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(30)
    (reflector,) = informer.reflectors
    synced_at = int(reflector.last_sync_resource_version)
    # The change must come after the watch is open: one the server's watch cache sees before
    # would be skipped as the watch's starting point, and no bookmark would carry it.
    wait_until(lambda: watching.watch_calls, timeout=30, message="the watch")
    # A change the informer does not watch (another namespace) moves the resource's version on.
    other = f"{namespace}-other"
    kube.create(CONFIGMAPS, configmap("default", f"elsewhere-{namespace}"))
    newer = int(rv(kube.get(CONFIGMAPS, ObjectKey("default", f"elsewhere-{namespace}"))))
    assert newer > synced_at
    wait_until(
        lambda: int(reflector.last_sync_resource_version) >= newer,
        timeout=30,
        message=lambda: f"a bookmark past {newer}; at {reflector.last_sync_resource_version}",
    )
    assert recorder.snapshot() == [], f"no event was delivered for {other}; only a bookmark moved the version"


def test_a_watch_gap_with_410_relists_without_losing_or_repeating_changes(
    control_plane: Any, kube: Kube, namespace: str, make_informer: Any, recorder: Recorder
) -> None:
    objs = {name: kube.create(CONFIGMAPS, configmap(namespace, name)) for name in ("a", "b", "c")}
    gated = GatedListerWatcher(KubeListerWatcher(kube, CONFIGMAPS, namespace))
    informer: Informer = make_informer(CONFIGMAPS, (namespace,), lister_watcher=gated)
    informer.add_event_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(30)
    (reflector,) = informer.reflectors
    wait_until(lambda: gated.watch_calls, timeout=30, message="the first watch")
    last_seen = reflector.last_sync_resource_version

    gated.cut()  # the watch is down from here
    changed = update(kube, namespace, "a", v="2")
    assert kube.delete(CONFIGMAPS, ObjectKey(namespace, "b"))
    added = kube.create(CONFIGMAPS, configmap(namespace, "d"))
    control_plane.compact_etcd()
    control_plane.restart_apiserver()  # a fresh watch cache cannot serve the old version: 410
    gated.restore()

    wait_until(lambda: len(gated.list_calls) >= 2, timeout=60, message="a re-list")
    assert gated.list_calls[1]["resource_version"] == last_seen
    assert gated.list_calls[1]["resource_version_match"] == "NotOlderThan"
    wait_until(lambda: recorder.of("d"), timeout=60, message="the re-list to be delivered")
    after = kube.create(CONFIGMAPS, configmap(namespace, "e"))
    wait_until(lambda: recorder.of("e"), timeout=60, message="the watch to resume after the re-list")

    assert recorder.of("a") == [("add", rv(objs["a"])), ("update", rv(changed))]
    assert recorder.of("b") == [("add", rv(objs["b"])), ("tombstone", rv(objs["b"]))]
    assert recorder.of("c") == [("add", rv(objs["c"]))], "an unchanged object produces no event"
    assert recorder.of("d") == [("add", rv(added))]
    assert recorder.of("e") == [("add", rv(after))]
    assert sorted(k.name for k in informer.store.list_keys()) == ["a", "c", "d", "e"]


def test_recovers_from_an_api_server_restart_with_backoff(
    control_plane: Any, kube: Kube, namespace: str, make_informer: Any, recorder: Recorder
) -> None:
    informer: Informer = make_informer(CONFIGMAPS, (namespace,))
    informer.add_event_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(30)
    failures_before = _errors(kube)

    control_plane.restart_apiserver()
    created = kube.create(CONFIGMAPS, configmap(namespace, "after-restart"))
    wait_until(lambda: recorder.of("after-restart"), timeout=90, message="the informer to recover")
    assert recorder.of("after-restart") == [("add", rv(created))]
    failed_attempts = _errors(kube) - failures_before
    assert failed_attempts <= 10, f"{failed_attempts} failed attempts while the server was down: no backoff?"


def _errors(kube: Kube) -> float:
    total = 0.0
    for family in kube.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "rest_client_requests_total" and sample.labels["code"] == "<error>":
                total += sample.value
    return total


def test_informer_over_all_namespaces_and_a_list_of_namespaces(
    kube: Kube, namespace: str, make_informer: Any, api_client: Any
) -> None:
    import kubernetes

    second = f"{namespace}-2"
    kubernetes.client.CoreV1Api(api_client).create_namespace(
        kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=second))
    )
    for ns in (namespace, second):
        kube.create(CONFIGMAPS, configmap(ns, "x"))
    scoped: Informer = make_informer(CONFIGMAPS, (namespace, second))
    everywhere: Informer = make_informer(CONFIGMAPS)
    for informer in (scoped, everywhere):
        informer.start()
        assert informer.wait_for_sync(30)
    assert {ObjectKey(namespace, "x"), ObjectKey(second, "x")} <= set(everywhere.store.list_keys())
    assert sorted(k for k in scoped.store.list_keys() if k.name == "x") == sorted(
        [ObjectKey(namespace, "x"), ObjectKey(second, "x")]
    )
    assert all(k.namespace in (namespace, second) for k in scoped.store.list_keys())


def test_custom_resources_are_listed_and_watched_by_path(
    kube: Kube, namespace: str, make_informer: Any
) -> None:
    lister_watchers = {
        r: GatedListerWatcher(KubeListerWatcher(kube, r, namespace)) for r in (RUNS, RUN_CONFIGURATIONS)
    }
    informers = [make_informer(r, (namespace,), lister_watcher=lw) for r, lw in lister_watchers.items()]
    for informer in informers:
        informer.start()
    for informer in informers:
        assert informer.wait_for_sync(30), f"{informer.resource} did not sync"
        assert informer.list() == []
    wait_until(
        lambda: all(lw.watch_calls for lw in lister_watchers.values()),
        timeout=30,
        message="both watches to be established",
    )


def test_a_custom_resource_list_page_gives_its_continue_token_before_its_items_are_decoded(
    kube: Kube, namespace: str
) -> None:
    # The reflector asks for the next page before decoding this one only if the API server
    # writes a custom resource list's own metadata last; a built-in list is decoded whole.
    for i in range(3):
        kube.create(
            RUNS,
            {"apiVersion": API_VERSION, "kind": "Run", "metadata": {"name": f"run-{i}"}, "spec": SEED_SPEC},
            namespace=namespace,
        )
    first = kube.list_page(RUNS, namespace, limit=2)
    assert first["metadata"]["continue"] and first["metadata"]["remainingItemCount"] == 1
    assert first._decoded is None, "the continue token was read without decoding the page"
    second = kube.list_page(RUNS, namespace, limit=2, continue_token=first["metadata"]["continue"])
    names = [item["metadata"]["name"] for page in (first, second) for item in page["items"]]
    assert names == ["run-0", "run-1", "run-2"]
    assert not second["metadata"].get("continue"), "the last page"

    kube.create(CONFIGMAPS, configmap(namespace, "cm"))
    configmaps = kube.list_page(CONFIGMAPS, namespace, limit=2)
    assert configmaps["metadata"]["resourceVersion"]
    assert configmaps._decoded is not None, "a built-in list puts its metadata first: decoded whole"


def test_the_managers_informers_cache_what_the_transform_keeps_of_the_servers_objects(
    kube: Kube, namespace: str
) -> None:
    # Runs (known fields) are decoded straight into the cached form, ConfigMaps (no fields
    # declared) decoded whole and stripped; either way the cache holds strip_for_cache(object).
    run_key, configmap_key = ObjectKey(namespace, "run-1"), ObjectKey(namespace, "cm")
    last_applied = {LAST_APPLIED_ANNOTATION: '{"kind":"Run"}', "team": "a"}
    kube.create(
        RUNS,
        {
            "apiVersion": API_VERSION,
            "kind": "Run",
            "metadata": {"name": "run-1", "annotations": last_applied, "labels": {"a": "1"}},
            "spec": SEED_SPEC,
        },
        namespace=namespace,
    )
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Succeeded",
        "message": "done",
        "lastTransitionTime": "2026-12-06T06:00:00Z",
    }
    kube.patch_status(RUNS, run_key, {"providerId": "kfp:1", "conditions": [condition]})
    kube.create(CONFIGMAPS, configmap(namespace, "cm", key="value"))
    mgr = Manager(
        cfg.load(
            {"watchNamespaces": [namespace], "leaderElection.enabled": False, "metrics.bindAddress": "0"}
        ),
        kube,
    )
    informers = {RUNS: mgr.informer(RUNS), CONFIGMAPS: mgr.informer(CONFIGMAPS)}
    for informer in informers.values():
        informer.start()
    try:

        def cached_as_served(resource: Resource, key: ObjectKey) -> bool:
            served = kube.get(resource, key)
            assert served["metadata"]["managedFields"], "the server keeps managedFields"
            return informers[resource].get(key) == strip_for_cache(served)

        for informer in informers.values():
            assert informer.wait_for_sync(30)
        assert cached_as_served(RUNS, run_key) and cached_as_served(CONFIGMAPS, configmap_key)
        # Watched changes too.
        kube.patch(RUNS, run_key, {"metadata": {"labels": {"a": "2"}}})
        update(kube, namespace, "cm", key="changed")
        wait_until(lambda: cached_as_served(RUNS, run_key), timeout=30, message="the watched Run")
        wait_until(
            lambda: cached_as_served(CONFIGMAPS, configmap_key), timeout=30, message="the watched ConfigMap"
        )
        cached_run = informers[RUNS].get(run_key)
        assert cached_run is not None and set(cached_run) == {
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "status",
        }
        assert cached_run["metadata"]["annotations"] == {"team": "a"}
    finally:
        for informer in informers.values():
            informer.stop()


class HeldListerWatcher(GatedListerWatcher):
    """A real lister-watcher whose lists of everything (no field selector) wait for ``release``."""

    def __init__(self, inner: KubeListerWatcher) -> None:
        super().__init__(inner)
        self.release = threading.Event()

    def list(self, **options: Any) -> dict[str, Any]:
        if not options.get("field_selector"):
            assert self.release.wait(60), "the test never released the list of everything"
        return super().list(**options)


def a_run(kube: Kube, namespace: str, name: str, completion_state: str | None = None) -> dict[str, Any]:
    kube.create(
        RUNS,
        {"apiVersion": API_VERSION, "kind": "Run", "metadata": {"name": name}, "spec": SEED_SPEC},
        namespace=namespace,
    )
    status: dict[str, Any] = {"providerId": f"kfp:{name}"}
    if completion_state:
        status["completionState"] = completion_state
    return kube.patch_status(RUNS, ObjectKey(namespace, name), status)


def test_runs_not_completed_are_cached_first_and_the_completed_ones_merged_behind_the_watch(
    kube: Kube, namespace: str, make_informer: Any, recorder: Recorder
) -> None:
    # The Run CRD's selectable field, as the operator's informer uses it.
    waiting = a_run(kube, namespace, "waiting")
    running = a_run(kube, namespace, "running")
    done = {name: a_run(kube, namespace, name, "Succeeded") for name in ("done-1", "done-2", "done-3")}
    held = HeldListerWatcher(KubeListerWatcher(kube, RUNS, namespace))
    informer: Informer = make_informer(
        RUNS, (namespace,), lister_watcher=held, page_size=2, prompt_selector=UNCOMPLETED_RUNS
    )
    informer.add_event_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(30, prompt_only=True)
    assert not informer.has_synced()
    assert sorted(obj["metadata"]["name"] for obj in informer.list()) == ["running", "waiting"]

    # While the completed Runs are held back, the watch runs: a Run completes, one is deleted,
    # one of the completed ones changes.
    finished = kube.patch_status(RUNS, ObjectKey(namespace, "running"), {"completionState": "Failed"})
    assert kube.delete(RUNS, ObjectKey(namespace, "done-1"))
    changed = kube.patch(RUNS, ObjectKey(namespace, "done-2"), {"metadata": {"labels": {"seen": "yes"}}})
    wait_until(lambda: recorder.of("done-2"), timeout=30, message="the watch to run ahead of the list")
    held.release.set()
    assert informer.wait_for_sync(30)

    served = {obj["metadata"]["name"]: rv(obj) for obj in kube.list(RUNS, namespace)}
    assert {obj["metadata"]["name"]: rv(obj) for obj in informer.list()} == served
    assert served == {
        "waiting": rv(waiting),
        "running": rv(finished),
        "done-2": rv(changed),
        "done-3": rv(done["done-3"]),
    }
    assert recorder.of("running") == [("add", rv(running)), ("update", rv(finished))]
    assert recorder.of("done-2") == [("add", rv(changed))], "not rolled back to the listed version"
    assert all(kind != "delete" for kind, _ in recorder.of("done-1")), "a deleted Run is not brought back"
    assert "done-1" not in served
    assert [call.get("field_selector") for call in held.list_calls][:1] == [UNCOMPLETED_RUNS]


def test_a_field_the_server_cannot_select_by_leads_to_one_list_of_everything(
    kube: Kube, namespace: str, make_informer: Any
) -> None:
    # A Run CRD installed without selectable fields (Helm does not upgrade CRDs) answers 400.
    a_run(kube, namespace, "waiting")
    a_run(kube, namespace, "done", "Succeeded")
    with pytest.raises(ApiException) as refused:
        kube.list_page(RUNS, namespace, field_selector="status.providerId=")
    assert refused.value.status == 400
    informer: Informer = make_informer(RUNS, (namespace,), prompt_selector="status.providerId=")
    informer.start()
    assert informer.wait_for_sync(30)
    assert sorted(obj["metadata"]["name"] for obj in informer.list()) == ["done", "waiting"]
