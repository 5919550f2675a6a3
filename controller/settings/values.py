"""Parsers for configuration values, shared by the file, the environment and flags.

Each parser takes a raw value (a YAML scalar or list from the file, or a string from a flag or
an environment variable), returns the typed value, and raises :class:`InvalidValue` with a
message that shows the offending value (``"abc" is not a duration``). ``controller.settings.loading``
prefixes the key. Durations use Go's syntax (``time.ParseDuration``: ``300ms``, ``1h30m``),
as Kubernetes tooling does, and are returned in seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

Parser = Callable[[Any], Any]


class InvalidValue(ValueError):
    """A parser's complaint about a value; the caller adds which key it was for."""


def _show(value: Any) -> str:
    """Shows a value in an error message: strings quoted, booleans as YAML writes them."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def parse_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidValue(f"{_show(value)} is not a string")
    return str(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise InvalidValue(f"{_show(value)} is not a boolean")


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidValue(f"{_show(value)} is not an integer")
        try:
            number = int(value.strip()) if isinstance(value, str) else value
        except ValueError:
            raise InvalidValue(f"{_show(value)} is not an integer") from None
        if not isinstance(number, int):
            raise InvalidValue(f"{_show(value)} is not an integer")
        if minimum is not None and number < minimum:
            raise InvalidValue(f"{number} is less than {minimum}")
        if maximum is not None and number > maximum:
            raise InvalidValue(f"{number} is greater than {maximum}")
        return number

    return parse


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidValue(f"{_show(value)} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"{_show(value)} is not a number") from None
    if not math.isfinite(number):
        raise InvalidValue(f"{_show(value)} is not a finite number")
    return number


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Parses a Go ``time.ParseDuration`` string (``"1h30m"``, ``"300ms"``, ``"-2s"``) to seconds."""
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise InvalidValue(f"{_show(text)} is not a duration")
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            raise InvalidValue(f"{_show(text)} is not a duration")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s):
        raise InvalidValue(f"{_show(text)} is not a duration")
    return sign * total


def parse_duration(minimum: float | None = None, *, optional: bool = False) -> Parser:
    """A Go-style duration in seconds; with ``optional``, ``""``/null mean unset (``None``)."""

    def parse(value: Any) -> float | None:
        if optional and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
            seconds = 0.0
        elif isinstance(value, str):
            seconds = parse_go_duration(value)
        else:
            raise InvalidValue(f"{_show(value)} is not a duration")
        if minimum is not None and seconds < minimum:
            raise InvalidValue(f"{_show(value)} is shorter than {format_duration(minimum)}")
        return seconds

    # Marks the parser so documentation shows defaults as durations ("10s"), not seconds.
    parse.is_duration = True  # type: ignore[attr-defined]
    return parse


def format_duration(seconds: float | None) -> str:
    """Formats seconds as a Go duration string (the inverse of :func:`parse_go_duration`)."""
    if seconds is None:
        return ""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    parts = []
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest or not parts:
        parts.append(f"{int(rest * 1000)}ms" if rest < 1 else f"{rest:g}s")
    return sign + "".join(parts)


def parse_str_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise InvalidValue(f"{_show(item)} is not a non-empty string")
            items.append(item.strip())
        return tuple(items)
    raise InvalidValue(f"{_show(value)} is not a list of strings")


def url_origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: nothing of it that may be a secret.

    Webhook URLs often carry their secret in the path (``/services/T0/B0/XXXX``), the user
    information or the query; the origin holds none of them.
    """
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    try:
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        port = ""
    return f"{parsed.scheme}://{host}{port}" if parsed.scheme else "<not a URL>"


def parse_url(*schemes: str, optional: bool = False, each: bool = False, credentials: str = "") -> Parser:
    """A URL with one of ``schemes`` and a host; ``each`` parses a list of them. With
    ``credentials`` (what to use instead), user information in the URL is refused: a secret in
    a configuration file or a ConfigMap is one anybody who can read it knows.

    Error messages show the URL without user information or query, which may hold secrets.
    """

    def one(value: Any) -> str:
        text = parse_str(value).strip()
        if not text and optional:
            return ""
        parsed = urlparse(text)
        if parsed.scheme not in schemes or not parsed.netloc:
            raise InvalidValue(f"{_show(url_origin(text))} is not a URL ({'|'.join(schemes)}://host...)")
        if credentials and "@" in parsed.netloc:
            raise InvalidValue(
                f"{_show(url_origin(text))}: the URL holds user information; use {credentials} instead"
            )
        return text

    def many(value: Any) -> tuple[str, ...]:
        return tuple(one(item) for item in parse_str_list(value))

    return many if each else one


def parse_enum(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        text = parse_str(value).strip().lower()
        if text not in choices:
            shown = ", ".join(c or '""' for c in choices)
            raise InvalidValue(f"{_show(value)} is not one of {shown}")
        return text

    return parse


def parse_bind_address(value: Any) -> str:
    """``host:port``, ``:port`` (all interfaces), or ``"0"`` to disable the server."""
    text = parse_str(value).strip()
    if text == "0":
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidValue(f"{_show(text)} is not an address (host:port, :port, or 0 to disable)")
    if host.startswith("[") != host.endswith("]"):
        raise InvalidValue(f"{_show(text)} is not an address (host:port, :port, or 0 to disable)")
    return text


def parse_dns_label(optional: bool = False) -> Parser:
    pattern = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

    def parse(value: Any) -> str:
        text = parse_str(value).strip()
        if not text and optional:
            return ""
        if len(text) > 253 or not pattern.match(text):
            raise InvalidValue(f"{_show(text)} is not a valid Kubernetes name")
        return text

    return parse
