"""Warnings the API server attaches to its responses, logged once each (controller-runtime's default).

The API server answers some requests with ``Warning`` headers (RFC 7234 §5.5, warn-code 299):
a field it does not know and dropped (``unknown field "status.x"``, when the installed CRDs are
older than the operator writing to them), an API version that is deprecated, a field that will
be removed. The request itself succeeds, so without these the loss would be silent.
controller-runtime's clients log each distinct warning once per process (client-go's own default
logs every one, which repeats a warning with every status write that draws it); so does
:class:`WarningLogger`, remembering the last :data:`REMEMBERED` messages so that its memory is
bounded.

No library parses the header's value: Python's ``email`` and ``http`` modules split header
lines, not RFC 7234 warnings, so :func:`parse_warnings` does, step by step as client-go's
``ParseWarningHeader`` (apimachinery's ``util/net``), except that client-go also decodes text
in RFC 2047's encoded words, which the API server never writes.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

import structlog

log = structlog.get_logger("controller.apiwarnings")

REMEMBERED = 1024

_CODE = re.compile(r"[0-9]{3}")


def parse_warnings(values: Iterable[str]) -> list[str]:
    """The texts of the warn-code 299 warnings in ``Warning`` header values, in order.

    One value may hold several warnings separated by commas; a value that does not parse is
    skipped from its first malformed warning on, and other warn-codes are ignored, as
    client-go does (``ParseWarningHeaders``, and its REST client keeps only code 299).
    """
    texts: list[str] = []
    for value in values:
        rest = value
        while rest:
            parsed = _parse_one(rest)
            if parsed is None:
                break
            code, text, rest = parsed
            if code == "299":
                texts.append(text)
    return texts


def _parse_one(header: str) -> tuple[str, str, str] | None:
    """One warning from the start of ``header``: its code, its text and what follows it (after
    a separating comma), or None when malformed. Step by step as client-go's
    ``ParseWarningHeader``: ``warn-code warn-agent "warn-text" ["warn-date"]``."""
    parts = header.strip().split(" ", 2)
    if len(parts) != 3:
        return None
    code, agent, text_and_rest = parts
    if not _CODE.fullmatch(code) or not agent or _has_control(agent):
        return None
    quoted = _unquote(text_and_rest)
    if quoted is None or _has_control(quoted[0]):
        return None
    text, rest = quoted
    if rest.startswith('"'):  # the warn-date: up to the next quote, no escapes
        end = rest.find('"', 1)
        if end < 0:
            return None
        rest = rest[end + 1 :].strip()
    if rest and not rest.startswith(","):
        return None
    return code, text, rest[1:].strip()


def _unquote(quoted: str) -> tuple[str, str] | None:
    """A quoted string's text (a backslash escapes the next character) and what follows it,
    stripped; None without both quotes."""
    if not quoted.startswith('"'):
        return None
    text: list[str] = []
    escaping = False
    for at in range(1, len(quoted)):
        char = quoted[at]
        if escaping:
            text.append(char)
            escaping = False
        elif char == "\\":
            escaping = True
        elif char == '"':
            return "".join(text), quoted[at + 1 :].strip()
        else:
            text.append(char)
    return None


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


class WarningHandler(Protocol):
    def __call__(self, values: Iterable[str]) -> None:
        """Handles a response's ``Warning`` header values (none, usually)."""


class WarningLogger:
    """Logs each distinct API server warning once: a warning repeats with every request
    that causes it (every status write of a dropped field), and the first says it all."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._remembered = remembered
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, values: Iterable[str]) -> None:
        for text in parse_warnings(values):
            if self._first_time(text):
                log.warning("API server warning", warning=text)

    def _first_time(self, text: str) -> bool:
        with self._lock:
            if text in self._seen:
                self._seen.move_to_end(text)
                return False
            self._seen[text] = None
            while len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
            return True


# The process's handler, shared by every client as client-go's default handler is: a warning is
# news once per process, whichever client's request drew it.
DEFAULT_HANDLER = WarningLogger()
