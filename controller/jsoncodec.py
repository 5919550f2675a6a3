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
from typing import Any

import orjson


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
