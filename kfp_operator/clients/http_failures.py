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


# The name Python's ssl gives a certificate its trusted CAs do not vouch for (controller.libcurl
# names libcurl's failure so too): what users search for.
CERTIFICATE_NOT_TRUSTED = "TLS handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate not trusted"


def describe_http_failure(error: Exception) -> str:
    cause = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason else error
    if isinstance(cause, urllib3.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(cause):
        return CERTIFICATE_NOT_TRUSTED
    for kind, words in _KINDS:
        if isinstance(cause, kind):
            return words
    return type(cause).__name__
