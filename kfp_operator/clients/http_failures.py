"""A failed HTTP exchange in a few words: what kind of failure, never its text.

The text of a urllib3 error may quote the URL (and so credentials in it) and varies from one
failure to the next (a timeout says how many milliseconds it waited). Statuses, Events and sink
errors name the kind instead, so the same failure reads the same each time; the full text goes
to the log line of the failed reconcile.
"""

from __future__ import annotations

import urllib3

_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (urllib3.exceptions.SSLError, "TLS handshake failed"),
    # (NewConnectionError is a kind of ConnectTimeoutError: it goes first)
    (urllib3.exceptions.NewConnectionError, "cannot connect"),
    (urllib3.exceptions.ConnectTimeoutError, "connection timed out"),
    (urllib3.exceptions.ReadTimeoutError, "no answer in time"),
    (urllib3.exceptions.ProtocolError, "connection broken"),
)


def describe_http_failure(error: Exception) -> str:
    cause = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason else error
    for kind, words in _KINDS:
        if isinstance(cause, kind):
            return words
    return type(cause).__name__
