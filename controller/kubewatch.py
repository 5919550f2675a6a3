"""Watch streams and the informers' lister-watcher, over :class:`controller.kube.Kube`.

The watch is read here rather than through ``kubernetes.watch.Watch``, which hides errors (an
``ERROR`` event can surface as a ``KeyError``, and some versions retry 410s internally): the
response is requested with ``_preload_content=False`` semantics, split into lines and decoded
with ``json.loads``, so every event, ``ERROR`` and ``BOOKMARK`` included, reaches the reflector
as the server sent it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import urllib3

from controller.resource import Resource

if TYPE_CHECKING:
    from controller.kube import Kube


def iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Splits a byte stream into newline-terminated lines, whatever the chunk boundaries."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                break
            line, buffer = buffer[:newline], buffer[newline + 1 :]
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class KubeWatchStream:
    """The events of one watch response, decoded line by line; closable from another thread."""

    def __init__(self, response: urllib3.HTTPResponse) -> None:
        self._response = response
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in iter_lines(self._response.stream(amt=None, decode_content=True)):
            yield json.loads(line)
        # The server ended the watch (its timeout): hand the connection back for reuse.
        self._closed = True
        self._response.release_conn()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # shutdown() interrupts a read blocked in another thread; close() alone may not.
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()


class KubeListerWatcher:
    """The reflector's :class:`~controller.reflector.ListerWatcher` over :class:`Kube`.

    Calls are made once (``retry=False``): the reflector's backoff is their retry layer.
    """

    def __init__(self, kube: Kube, resource: Resource, namespace: str | None) -> None:
        self._kube = kube
        self._resource = resource
        self._namespace = namespace

    def list(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int,
        continue_token: str | None,
    ) -> dict[str, Any]:
        return self._kube.list_page(
            self._resource,
            self._namespace,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            limit=limit,
            continue_token=continue_token,
            retry=False,
        )

    def watch(self, *, resource_version: str, timeout_seconds: int) -> KubeWatchStream:
        return self._kube.watch(
            self._resource,
            self._namespace,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        )
