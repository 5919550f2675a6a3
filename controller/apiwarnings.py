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
lines, not RFC 7234 warnings, so :func:`parse_warnings` does (as client-go's
``ParseWarningHeader``: only warn-code 299, the text unquoted, a malformed value skipped).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

import structlog

log = structlog.get_logger("controller.apiwarnings")

REMEMBERED = 1024

# warn-code SP warn-agent SP warn-text [SP warn-date], the text and date quoted strings.
_WARNING = re.compile(
    r'\s*(?P<code>\d{3}) (?P<agent>[^\s",]+) "(?P<text>(?:[^"\\]|\\.)*)"(?: "(?:[^"\\]|\\.)*")?\s*(?:,|$)'
)
_ESCAPE = re.compile(r"\\(.)")


def parse_warnings(values: Iterable[str]) -> list[str]:
    """The texts of the warn-code 299 warnings in ``Warning`` header values, in order.

    One value may hold several warnings separated by commas; a value that does not parse is
    skipped from its first malformed warning on, and other warn-codes are ignored, as
    client-go does.
    """
    texts: list[str] = []
    for value in values:
        at = 0
        while at < len(value):
            match = _WARNING.match(value, at)
            if match is None or match.end() == at:
                break
            if match["code"] == "299":
                texts.append(_ESCAPE.sub(r"\1", match["text"]))
            at = match.end()
    return texts


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
