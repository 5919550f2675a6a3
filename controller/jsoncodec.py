"""The API server's JSON: orjson, with the standard library as the fallback.

Every object the operator caches was decoded here, from a list page or a watch event, so the
decoder's speed is most of the cost of a re-list and of each change. orjson decodes about twice
as fast as :mod:`json` here, and shares the dict keys of every document it decodes (its key
cache), where :func:`json.loads` makes new key strings for each watch event: the cache would
otherwise hold every key of every object once per object. orjson refuses what strict JSON
refuses (NaN, Infinity); such a document is decoded by :mod:`json` instead. Integers beyond
64 bits, which orjson would turn into floats, never come from the API server: it keeps the
numbers of custom resources as int64 or float64 itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

Decode = Callable[[bytes], dict[str, Any]]
"""Decodes a whole JSON document that is an object."""


def loads(data: bytes | str) -> Any:
    """The value of a JSON document."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """A JSON document (UTF-8) for a request body."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # What orjson refuses (dict keys that are not strings, integers beyond 64 bits) the
        # standard library may still encode, or refuses with its own error.
        return json.dumps(value).encode()


_METADATA_KEY = b'"metadata":'


class ListDocument(Mapping[str, Any]):
    """A list response kept encoded until more than its ``metadata`` is read.

    The API server writes a custom resource's list with its keys in order (``apiVersion``,
    ``items``, ``kind``, ``metadata``), so the list's own metadata, which holds the continue
    token, is the document's last value and can be read without decoding the items. A list
    reader can then ask for the next page before it decodes this one, and the API server
    prepares that page meanwhile. A document laid out otherwise (the built-in types put
    ``metadata`` before ``items``) is decoded whole on first access, as any other. ``decode``
    replaces :func:`loads` for the whole document (an informer's decoder into its cache's form).
    """

    def __init__(self, data: bytes, decode: Decode | None = None) -> None:
        self._data = data
        self._decode = decode
        self._decoded: dict[str, Any] | None = None
        self._metadata = _trailing_list_metadata(data)

    def __getitem__(self, key: str) -> Any:
        if key == "metadata" and self._decoded is None and self._metadata is not None:
            return self._metadata
        return self._document()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._document())

    def __len__(self) -> int:
        return len(self._document())

    def _document(self) -> dict[str, Any]:
        if self._decoded is None:
            decoded = (self._decode or loads)(self._data) if self._data else {}
            self._decoded = decoded if isinstance(decoded, dict) else {}
            self._data = b""
        return self._decoded


def _trailing_list_metadata(data: bytes) -> dict[str, Any] | None:
    """The value of the document's last key if that key is a list's ``metadata``, else None.

    Inside a JSON string every quote is escaped, so the last unescaped ``"metadata":`` is a
    key; if it is not the document's last key, what follows it is not one JSON value and
    does not decode. An object's metadata (it has a name) is not a list's.
    """
    at = data.rfind(_METADATA_KEY)
    end = data.rfind(b"}")  # the document's closing brace
    if at < 0 or end < at:
        return None
    try:
        value = orjson.loads(data[at + len(_METADATA_KEY) : end])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or "name" in value or "uid" in value:
        return None
    return value
