"""Unary HTTP requests through libcurl (``pycurl``).

Why not urllib3 for these: a status patch or an Event costs the operator about 1 ms of CPU in
Python's HTTP stack alone (``http.client`` formatting headers and parsing them with the
``email`` package, urllib3's pool and response wrappers), more than the operator's own work for
that request; libcurl makes the same exchange in C for about a third of that and releases the
GIL while it waits. Watches stay on urllib3 (``controller.transport``): they stream, and what
they cost is decoding events, not HTTP.

Nothing changes for callers: a response comes back as a :class:`CurlResponse` with what
urllib3's response offers the callers and the ``kubernetes`` client's exceptions (``status``,
``reason``, ``headers``, ``data``), and a transport failure is raised as the urllib3 error the
retry policies and the reflector already classify (:func:`transport_error`): a connection that
could not be made as ``NewConnectionError`` or ``ConnectTimeoutError`` (the request never
left), a timeout once connected as ``ReadTimeoutError``, a TLS failure as ``SSLError``, and
anything else after sending as ``ProtocolError``.

Only requests that may be repeated go over libcurl (:data:`REPEATABLE_METHODS`): when a kept-alive
connection turns out dead before any answer arrives, libcurl sends the request once more on a
fresh connection, and nothing turns that off. A repeated GET, PUT or DELETE changes nothing, a
repeated JSON merge patch sets the same fields again (and one conditional on a
``resourceVersion`` fails visibly with 409); a repeated POST could create a second object (a
second KFP run), so a POST is refused here and its callers send it with urllib3.

Response headers are mostly not handed to Python. libcurl calls a header callback once per
header line, and each call takes the GIL back from whichever thread holds it: with the
operator's threads busy, that was a dozen GIL hand-overs per request, each up to the
interpreter's switch interval (5 ms) of waiting and a context switch. Measured against the API
server with one other thread running Python: a status patch cost its thread 1.5 ms of CPU and
54 ms of wall time with the callback, 0.8 ms and 16 ms without. No caller reads a successful
response's headers; an error response carries the two the operator reads, ``Content-Type`` and
``Retry-After``, which libcurl parses itself (:class:`CurlResponse`). The one header worth the
cost now and then is ``Warning`` (``controller.apiwarnings``): each thread's first request,
and then one request every ``warnings_every`` seconds per thread, hands its header lines to
Python for it. A warning is caused by what a request asks (a field the API server drops, a
deprecated API), so it comes back with every request of that kind, and a sample of them finds
it: within that interval of the first, on a thread making such requests.

Proxies are not supported: a client configured with one keeps urllib3.
"""

from __future__ import annotations

import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pycurl
import urllib3.exceptions
from urllib3 import HTTPHeaderDict

REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# How often each thread reads a response's headers for warnings (see the module docstring).
WARNINGS_EVERY = 30.0
_METHODS_WITH_BODY = frozenset({"PUT", "PATCH"})
_CONNECT_FAILURES = frozenset(
    {pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_PROXY}
)
_TLS_FAILURES = frozenset(
    {
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CERTPROBLEM,
        pycurl.E_SSL_CIPHER,
        pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_CRL_BADFILE,
        pycurl.E_SSL_ISSUER_ERROR,
        pycurl.E_SSL_ENGINE_NOTFOUND,
        pycurl.E_SSL_ENGINE_SETFAILED,
        pycurl.E_SSL_ENGINE_INITFAILED,
        pycurl.E_USE_SSL_FAILED,
    }
)


@dataclass(frozen=True)
class TlsOptions:
    """How to check the server and prove the client, as urllib3's pool takes them.

    With no CA given, the server is checked against the system's CAs, the ones Python's
    ``ssl`` module (and so urllib3) would load.
    """

    verify: bool = True
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None


class CurlResponse:
    """A whole response: what ``ApiException`` and the callers read of urllib3's.

    Its headers are what libcurl parsed of them (see the module docstring): ``Content-Type``,
    and ``Retry-After`` in seconds (an HTTP-date converted), when the server sent them.
    ``warnings`` holds the ``Warning`` header values of a response whose headers were read.
    """

    def __init__(
        self,
        status: int,
        data: bytes,
        *,
        content_type: str | None = None,
        retry_after: int = 0,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.status = status
        self.data = data
        self.warnings = warnings
        self._content_type = content_type
        self._retry_after = retry_after

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return ""

    @property
    def headers(self) -> HTTPHeaderDict:
        headers = HTTPHeaderDict()
        if self._content_type:
            headers["Content-Type"] = self._content_type
        if self._retry_after > 0:
            headers["Retry-After"] = str(self._retry_after)
        return headers

    def read(self) -> bytes:
        return self.data

    def getheaders(self) -> HTTPHeaderDict:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class CurlSession:
    """Sends unary requests with one libcurl handle per thread.

    A handle is not thread-safe; each thread's handle keeps its own connection alive, which is
    what urllib3's pool gives each concurrent caller too. A thread's handle, and its
    connection, go with the thread.
    """

    def __init__(
        self,
        tls: TlsOptions,
        *,
        connect_timeout: float = 10.0,
        warnings_every: float = WARNINGS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tls = tls
        self._connect_timeout_ms = int(connect_timeout * 1000)
        self._warnings_every = warnings_every
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: weakref.WeakSet[pycurl.Curl] = weakref.WeakSet()

    def close(self) -> None:
        """Closes every thread's handle and its connection; later requests open new ones."""
        with self._lock:
            handles, self._handles = list(self._handles), weakref.WeakSet()
            self._local = threading.local()
        for curl in handles:
            curl.close()

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
        *,
        repeat_safe: bool = False,
    ) -> CurlResponse:
        """Sends one request and reads the whole response. ``repeat_safe`` lets a POST through:
        the caller vouches that the request, sent twice, does no harm."""
        if method not in REPEATABLE_METHODS and not repeat_safe:
            raise ValueError(f"{method} is not safe to repeat: send it with urllib3 (see controller.libcurl)")
        curl = self._handle()
        # reset() keeps the handle's live connection and TLS session; the options are set anew.
        curl.reset()
        self._configure(curl)
        body_chunks: list[bytes] = []
        curl.setopt(pycurl.URL, url)
        if method == "GET" and body is None:
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, method)
            if body is not None or method in _METHODS_WITH_BODY:
                # An empty body is sent with its length, 0, as urllib3 sends it.
                curl.setopt(pycurl.POSTFIELDS, body or b"")
        # "Expect:" stops libcurl from waiting for a 100 Continue before sending a large body.
        curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:"])
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.WRITEFUNCTION, body_chunks.append)
        header_lines: list[bytes] | None = [] if self._reads_headers() else None
        if header_lines is not None:
            curl.setopt(pycurl.HEADERFUNCTION, header_lines.append)
        try:
            curl.perform()
        except pycurl.error as err:
            args: tuple[Any, ...] = err.args  # libcurl's error code and message
            code, message = int(args[0]), str(args[1])
            sent = curl.getinfo(pycurl.REQUEST_SIZE) > 0
            raise transport_error(code, message, url, sent=sent) from err
        status: int = curl.getinfo(pycurl.RESPONSE_CODE)
        data = b"".join(body_chunks)
        warnings = _warning_values(header_lines) if header_lines else ()
        if 200 <= status <= 299:
            return CurlResponse(status, data, warnings=warnings)
        return CurlResponse(
            status,
            data,
            content_type=curl.getinfo(pycurl.CONTENT_TYPE),
            retry_after=curl.getinfo(pycurl.RETRY_AFTER),
            warnings=warnings,
        )

    def _reads_headers(self) -> bool:
        """Whether this thread's request now hands its headers to Python (module docstring)."""
        now = self._clock()
        last: float | None = getattr(self._local, "headers_read_at", None)
        if last is not None and now - last < self._warnings_every:
            return False
        self._local.headers_read_at = now
        return True

    def _handle(self) -> pycurl.Curl:
        curl: pycurl.Curl | None = getattr(self._local, "curl", None)
        if curl is None:
            curl = self._local.curl = pycurl.Curl()
            with self._lock:
                self._handles.add(curl)
        return curl

    def _configure(self, curl: pycurl.Curl) -> None:
        tls = self._tls
        curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: the operator is threaded
        # Any proxy was resolved by the client's configuration, and such a client keeps
        # urllib3; libcurl must not look in the environment again.
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, self._connect_timeout_ms)
        curl.setopt(pycurl.TCP_KEEPALIVE, 1)
        if not tls.verify:
            curl.setopt(pycurl.SSL_VERIFYPEER, 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        if tls.ca_data:
            curl.setopt(pycurl.CAINFO_BLOB, tls.ca_data)
        elif tls.ca_file:
            curl.setopt(pycurl.CAINFO, tls.ca_file)
        else:
            _system_cas(curl)
        if tls.cert_file:
            curl.setopt(pycurl.SSLCERT, tls.cert_file)
        if tls.key_file:
            curl.setopt(pycurl.SSLKEY, tls.key_file)


def _warning_values(header_lines: list[bytes]) -> tuple[str, ...]:
    """The ``Warning`` header values of the final response among libcurl's header lines
    (each response's block starts with its status line; an interim 1xx block comes first)."""
    values: list[str] = []
    for line in header_lines:
        if line.startswith(b"HTTP/"):
            values.clear()
        elif line[:8].lower() == b"warning:":
            values.append(line[8:].strip().decode("utf-8", "replace"))
    return tuple(values)


def _system_cas(curl: pycurl.Curl) -> None:
    """Points libcurl at the CAs Python's ``ssl`` loads by default (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` included); the libcurl bundled with pycurl may look elsewhere."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile:
        curl.setopt(pycurl.CAINFO, paths.cafile)
    if paths.capath:
        curl.setopt(pycurl.CAPATH, paths.capath)


def transport_error(code: int, message: str, url: str, *, sent: bool) -> Exception:
    """The error a urllib3 request would have raised for this libcurl failure.

    ``sent`` tells whether any of the request was written: a timeout before that is a
    connect timeout (safe to repeat, whatever the method), after it a read timeout.
    """
    detail = f"libcurl error {code}: {message}"
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        # The name Python's ssl (and so urllib3) gives this failure, which users search for.
        detail = f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed ({detail})"
    if code in _TLS_FAILURES:
        return urllib3.exceptions.SSLError(detail)
    if code in _CONNECT_FAILURES:
        return urllib3.exceptions.NewConnectionError(None, detail)  # type: ignore[arg-type]
    if code == pycurl.E_OPERATION_TIMEDOUT:
        if not sent:
            return urllib3.exceptions.ConnectTimeoutError(detail)
        return urllib3.exceptions.ReadTimeoutError(None, url, detail)  # type: ignore[arg-type]
    return urllib3.exceptions.ProtocolError(detail)
