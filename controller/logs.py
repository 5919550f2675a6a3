"""Structured logging: structlog, JSON by default, with secrets redacted before rendering.

:func:`configure_logging` routes both structlog loggers and the standard library's
``logging`` (urllib3, the kubernetes client) through one processor chain:

* context from ``structlog.contextvars`` (the runner binds ``controller``, ``namespace``,
  ``name``, ``reconcileID`` around each reconcile), the level, the logger name and an ISO-8601
  UTC timestamp;
* exceptions rendered to text, so they are redacted too;
* :func:`redact_secrets`, the last step before rendering, so no token, password or
  authorization header reaches the output, whatever a caller passed;
* one JSON object per line (message under ``msg``, as Kubernetes components log), or
  structlog's human-readable console renderer when ``log.format`` is ``console`` (or unset
  and stderr is a terminal).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

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


# Text none of the patterns can match lacks all of these: one scan tells, and most log values
# (names, ids, states) are let through without running each pattern.
_MAYBE_SECRET = re.compile(r"(?i)authoriz|passw|pwd|secret|token|key|cookie|bearer|basic|://|eyJ")


def redact_text(text: str) -> str:
    """Replaces secrets found in free text with ``[REDACTED]``."""
    if not _MAYBE_SECRET.search(text):
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


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: blanks secret-named fields and secrets inside text values."""
    return {
        key: REDACTED if _is_sensitive_key(key) and value else _redact(value)
        for key, value in event_dict.items()
    }


def configure_logging(level: str = "info", fmt: str = "", stream: TextIO | None = None) -> None:
    """Configures structlog and the standard library's logging for the whole process.

    ``fmt`` is ``"json"``, ``"console"``, or ``""`` to pick the console renderer when
    ``stream`` (default stderr) is a terminal and JSON otherwise.
    """
    stream = stream or sys.stderr
    if not fmt:
        fmt = "console" if stream.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        renderer: list[Any] = [structlog.processors.EventRenamer("msg"), structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so structlog.testing.capture_logs() keeps working for loggers that
        # were already used.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_secrets, *renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # urllib3's debug lines quote each request's path and query, where webhook and signed URLs
    # carry their credentials; the clients log their requests' outcomes themselves.
    logging.getLogger("urllib3").setLevel(max(LEVELS[level], logging.INFO))
