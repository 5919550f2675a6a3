"""Watch streams: the events of one watch response, as the API server sent them.

The watch is read here rather than through ``kubernetes.watch.Watch``, which hides errors (an
``ERROR`` event can surface as a ``KeyError``, and some versions retry 410s internally): the
response is requested with ``_preload_content=False`` semantics, split into lines and decoded
with :func:`controller.jsoncodec.loads` (or the informer's decoder), so every event, ``ERROR``
and ``BOOKMARK`` included, reaches the reflector as the server sent it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import urllib3

from controller import jsoncodec


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

    def __init__(self, response: urllib3.HTTPResponse, decode: jsoncodec.Decode | None = None) -> None:
        self._response = response
        self._decode = decode or jsoncodec.loads
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        decode = self._decode
        for line in iter_lines(self._response.stream(amt=None, decode_content=True)):
            yield decode(line)
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
