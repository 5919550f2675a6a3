"""A watch on the Runs of one namespace that notes *when* each Run reached each stage.

Times are this process's ``time.monotonic()`` at the moment the watch event arrived,
so they are comparable with the bench's own clock readings (when a create returned)
to the sub-millisecond, unlike ``creationTimestamp`` and the status times, which
have whole-second resolution. An event reaches the watch within milliseconds of the
write that caused it; that delay is the same for the operator and the floor.

Stages: ``submitted`` is the first event showing ``status.providerId``,
``completed`` the first showing ``status.completionState``, ``delivered`` the first
showing ``status.completionEvent.deliveredAt``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from bench.kubehttp import ApiError, KubeHttp, Stream, runs_path

log = logging.getLogger(__name__)

WATCH_TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class RunTimes:
    uid: str
    seen: float
    submitted: float | None = None
    completed: float | None = None
    delivered: float | None = None
    provider_id: str | None = None
    completion_state: str | None = None


class RunWatcher:
    def __init__(self, kube: KubeHttp, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._lock = threading.Lock()
        self._runs: dict[str, RunTimes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resource_version = ""
        self._stream: Stream | None = None

    def start(self) -> RunWatcher:
        self._list()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self._namespace}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def snapshot(self) -> dict[str, RunTimes]:
        with self._lock:
            return dict(self._runs)

    # -- internals ---------------------------------------------------------------------------

    def _list(self) -> None:
        token = ""
        while True:
            query = "?limit=500" + (f"&continue={token}" if token else "")
            page = self._kube.get_json(runs_path(self._namespace) + query)
            now = time.monotonic()
            for obj in page.get("items") or []:
                self._observe(obj, now)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                self._resource_version = page["metadata"]["resourceVersion"]
                return

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except ApiError as error:
                if self._stop.is_set():
                    return
                if error.status == 410:
                    self._list()
                    continue
                log.warning("run watch failed; retrying: %s", error)
                self._stop.wait(0.2)
            except Exception as error:  # a dropped connection: watch again from the last version
                if self._stop.is_set():
                    return
                log.warning("run watch failed; retrying: %s: %s", type(error).__name__, error)
                self._stop.wait(0.2)

    def _watch(self) -> None:
        path = (
            runs_path(self._namespace)
            + f"?watch=true&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
            + f"&resourceVersion={self._resource_version}"
        )
        self._stream = self._kube.open_stream(path, read_timeout=WATCH_TIMEOUT_SECONDS + 30)
        if self._stop.is_set():
            self._stream.close()
        for line in self._stream.lines():
            now = time.monotonic()
            event = json.loads(line)
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                raise ApiError("WATCH", path, int(obj.get("code") or 500), line)
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self._resource_version = version
            if event.get("type") in ("ADDED", "MODIFIED"):
                self._observe(obj, now)
            if self._stop.is_set():
                return

    def _observe(self, obj: dict[str, Any], now: float) -> None:
        metadata = obj.get("metadata") or {}
        status = obj.get("status") or {}
        name = metadata.get("name", "")
        with self._lock:
            times = self._runs.get(name)
            if times is None or times.uid != metadata.get("uid"):
                times = RunTimes(uid=metadata.get("uid", ""), seen=now)
            if times.submitted is None and status.get("providerId"):
                times = replace(times, submitted=now, provider_id=status["providerId"])
            if times.completed is None and status.get("completionState"):
                times = replace(times, completed=now, completion_state=status["completionState"])
            if times.delivered is None and (status.get("completionEvent") or {}).get("deliveredAt"):
                times = replace(times, delivered=now)
            self._runs[name] = times
