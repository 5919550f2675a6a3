"""Structured logging: structlog, JSON by default, with secrets redacted before rendering.

:func:`configure_logging` renders structlog loggers' lines and the standard library's
(``logging``: urllib3, the kubernetes client) with one processor chain, written through one
handler:

* the reconcile in progress (:func:`reconcile_context`: the runner's ``controller``,
  ``controllerGroup``, ``controllerKind``, ``namespace``, ``name`` and ``reconcileID``) and
  any context bound with ``structlog.contextvars``, the level, the logger name and an ISO-8601
  UTC timestamp;
* exceptions rendered to text, so they are redacted too;
* :func:`redact_secrets`, the last step before rendering, so no token, password or
  authorization header reaches the output, whatever a caller passed;
* one JSON object per line (message under ``msg``, as Kubernetes components log; encoded by
  orjson), or structlog's human-readable console renderer when ``log.format`` is ``console``
  (or unset and stderr is a terminal).

The operator's own lines do not pass through ``logging``: that path builds two ``LogRecord``s
and walks the stack for the caller on every line, which made a line cost about 150 µs; a
structlog line below the level costs a method call that returns. The reconcile's fields are one
context variable set per reconcile: ``structlog.contextvars`` keeps a variable per key, and
binding and unbinding six of them cost about 25 µs on every reconcile, logged or not.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

REDACTED = "[REDACTED]"

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Keys whose values are secrets, whatever they contain. Keys naming where a secret lives
# (``tokenPath``, ``password_file``) are not secrets themselves.
_SENSITIVE_KEY = re.compile(
    r"(?i)(authorization|passw(or)?d|\bpwd\b|secret|token|api[_-]?key|access[_-]?key|credential|cookie|"
    r"bearer|private[_-]?key|client[_-]?key)"
)
_NOT_SENSITIVE_KEY = re.compile(r"(?i)(path|file|dir|name|ref|kind|type)$")

# Secrets inside free text: "Bearer <token>", "password=<x>", JSON/dict/headers forms
# ("'Authorization': 'Bearer <x>'"), credentials in URLs, and JWTs anywhere.
_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)((?:authorization|proxy-authorization|passw(?:or)?d|pwd|secret|token|api[_-]?key|"
            r"access[_-]?key|x-api-key|cookie)[\"']?\s*[:=]\s*[\"']?)"
            r"((?:bearer|basic)\s+)?[^\s\"',;}&]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\[REDACTED\])[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + REDACTED + r"\2"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
)


# Text none of the patterns can match lacks all of these (in any case), and most log values
# (names, ids, states) are let through without running each pattern. Substring tests on the
# lowered text, because a case-insensitive alternation costs re about 0.2 µs per character.
_MAYBE_SECRET = (
    "authoriz",
    "passw",
    "pwd",
    "secret",
    "token",
    "key",
    "cookie",
    "bearer",
    "basic",
    "://",
    "eyj",
)


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _MAYBE_SECRET)


def redact_text(text: str) -> str:
    """Replaces secrets found in free text with ``[REDACTED]``."""
    if not _may_hold_secret(text):
        return text
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and _is_sensitive_name(key)


@functools.lru_cache(maxsize=1024)
def _is_sensitive_name(key: str) -> bool:
    # Log field names are few and recur on every line.
    return bool(_SENSITIVE_KEY.search(key)) and not _NOT_SENSITIVE_KEY.search(key)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_sensitive_key(k) and v else _redact(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        items = [_redact(v, depth + 1) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


_SAFE_SCALARS = (int, float, type(None))


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: blanks secret-named fields and secrets inside text values."""
    if _plainly_safe(event_dict):
        return event_dict
    return {
        key: REDACTED if _is_sensitive_key(key) and value else _redact(value)
        for key, value in event_dict.items()
    }


def _plainly_safe(event_dict: EventDict) -> bool:
    """Whether a line has nothing to redact, told by one scan of all its text: the usual line
    (names, ids, states, numbers) has no secret-named field and no text any pattern could
    match. Anything else (nested values, a hit) takes the full, field-by-field pass."""
    texts: list[str] = []
    for key, value in event_dict.items():
        if _is_sensitive_key(key) and value:
            return False
        if type(value) is str:
            texts.append(value)
        elif type(value) in (list, tuple) and all(type(item) is str for item in value):
            texts.extend(value)  # names, as in a completion's line: the sinks that took its event
        elif not isinstance(value, _SAFE_SCALARS):
            return False
    # A hit in the joined text is only a maybe; a secret in any one value is always a hit.
    return not _may_hold_secret("\x00".join(texts))


_reconcile: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "reconcile_log_fields", default=None
)


@contextlib.contextmanager
def reconcile_context(fields: Mapping[str, Any]) -> Iterator[None]:
    """Within this context (thread or task), every line carries ``fields`` (a line's own keys
    win), as with ``structlog.contextvars.bound_contextvars`` but set at once."""
    token = _reconcile.set(fields)
    try:
        yield
    finally:
        _reconcile.reset(token)


def merge_reconcile_context(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """The processor adding :func:`reconcile_context`'s fields to a line."""
    fields = _reconcile.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def configure_logging(
    level: str = "info", fmt: str = "", stream: TextIO | None = None, *, cache_loggers: bool = False
) -> None:
    """Configures structlog and the standard library's logging for the whole process.

    ``fmt`` is ``"json"``, ``"console"``, or ``""`` to pick the console renderer when
    ``stream`` (default stderr) is a terminal and JSON otherwise. ``cache_loggers`` makes each
    logger build its bound logger once, on first use, rather than on every line (a third of
    the cost of a line below the level); a process that configures logging once, the
    operator's, sets it. Left unset, ``structlog.testing.capture_logs()`` also captures
    loggers that were used before.
    """
    stream = stream or sys.stderr
    if not fmt:
        fmt = "console" if stream.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        merge_reconcile_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        renderer: list[Any] = [
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(serializer=_json_line),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_secrets,
                *renderer,
            ],
        )
    )
    # The operator's own lines skip the standard library: below the level a call returns at
    # once, and above it the line is rendered by the same chain and written through the same
    # handler (and its lock), without the two LogRecords and the caller lookup the standard
    # library's path costs on each line. Libraries' lines (urllib3, the kubernetes client)
    # still come through ``logging``, rendered alike.
    structlog.configure(
        processors=[*shared, redact_secrets, *renderer],
        logger_factory=functools.partial(_HandlerLogger, handler),
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        cache_logger_on_first_use=cache_loggers,
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # urllib3's debug lines quote each request's path and query, where webhook and signed URLs
    # carry their credentials; the clients log their requests' outcomes themselves.
    logging.getLogger("urllib3").setLevel(max(LEVELS[level], logging.INFO))


class _HandlerLogger:
    """Writes structlog's rendered lines through a ``logging`` handler's stream and lock, so
    they never interleave with the lines ``logging`` writes there."""

    def __init__(self, handler: logging.StreamHandler[TextIO], *args: Any) -> None:
        self._handler = handler
        # The name ``structlog.get_logger(name)`` was given, for ``add_logger_name``.
        self.name = str(args[0]) if args else ""

    def msg(self, line: str) -> None:
        handler = self._handler
        with handler.lock:  # type: ignore[union-attr]  # StreamHandler always creates it
            handler.stream.write(line + "\n")
            handler.stream.flush()

    debug = info = warning = warn = error = exception = critical = fatal = msg


def _json_line(event: Mapping[str, Any], default: Any = None) -> str:
    """One log line as JSON: orjson, or the standard library for what orjson refuses (keys
    that are not strings, integers beyond 64 bits)."""
    try:
        return orjson.dumps(event, default=default).decode()
    except TypeError:
        return json.dumps(event, default=default)
