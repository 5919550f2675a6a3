"""Unary requests to the API server through libcurl (``pycurl``).

Why not urllib3 for these: a status patch or an Event costs the operator about 1 ms of CPU in
Python's HTTP stack alone (``http.client`` formatting headers and parsing them with the
``email`` package, urllib3's pool and response wrappers), more than the operator's own work for
that request; libcurl makes the same exchange in C for about a third of that and releases the
GIL while it waits. Watches stay on urllib3 (``controller.transport``): they stream, and what
they cost is decoding events, not HTTP.

Nothing changes for callers: a response comes back as a :class:`CurlResponse` with what the
``kubernetes`` client's exceptions read (``status``, ``reason``, ``headers``, ``data``), and a
transport failure is raised as the urllib3 error the retry policy and the reflector already
classify (:func:`transport_error`): a connection that could not be made as
``NewConnectionError`` or ``ConnectTimeoutError`` (the request never left), a timeout once
connected as ``ReadTimeoutError``, anything else after sending as ``ProtocolError``, and a TLS
failure as an ``ApiException`` with status 0, as the client's own path raises it.

libcurl is used only for configurations it serves exactly as urllib3 would
(:func:`serves`): no proxy, no TLS server name or hostname override, no socket options. For
those the client's urllib3 pool manager is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pycurl
import urllib3.exceptions
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

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


def serves(configuration: Configuration) -> bool:
    """Whether libcurl can make this configuration's requests exactly as urllib3 would."""
    return not (
        configuration.proxy
        or configuration.tls_server_name
        or configuration.assert_hostname is not None
        or configuration.socket_options is not None
    )


class CurlResponse:
    """A whole response: what ``ApiException`` and the callers read of urllib3's.

    The header lines are kept as they came and parsed only when read: a successful request
    never reads them.
    """

    def __init__(self, status: int, header_lines: list[bytes], data: bytes) -> None:
        self.status = status
        self.data = data
        self._header_lines = header_lines
        self._parsed: tuple[str, HTTPHeaderDict] | None = None

    @property
    def reason(self) -> str:
        return self._parse()[0]

    @property
    def headers(self) -> HTTPHeaderDict:
        return self._parse()[1]

    def read(self) -> bytes:
        return self.data

    def getheaders(self) -> HTTPHeaderDict:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def _parse(self) -> tuple[str, HTTPHeaderDict]:
        if self._parsed is None:
            self._parsed = parse_header_lines(self._header_lines)
        return self._parsed


def parse_header_lines(lines: list[bytes]) -> tuple[str, HTTPHeaderDict]:
    """The reason phrase and headers of the last response in ``lines`` (libcurl passes every
    status line it reads, a ``100 Continue`` before the final one included)."""
    reason, headers = "", HTTPHeaderDict()
    for line in lines:
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            reason, headers = text.split(" ", 2)[2] if text.count(" ") >= 2 else "", HTTPHeaderDict()
        elif ":" in text:
            name, _, value = text.partition(":")
            headers.add(name.strip(), value.strip())
    return reason, headers


class CurlSession:
    """Sends unary requests with one libcurl handle per thread.

    A handle is not thread-safe; each thread's handle keeps its own connection alive, which is
    what urllib3's pool gives each concurrent caller too.
    """

    def __init__(self, configuration: Configuration) -> None:
        self._configuration = configuration
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: list[pycurl.Curl] = []

    def close(self) -> None:
        """Closes every thread's handle and its connection; later requests open new ones."""
        with self._lock:
            handles, self._handles = self._handles, []
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
    ) -> CurlResponse:
        curl = self._handle()
        # reset() keeps the handle's live connection and TLS session; the options are set anew.
        curl.reset()
        self._configure(curl)
        header_lines: list[bytes] = []
        body_chunks: list[bytes] = []
        curl.setopt(pycurl.URL, url)
        if method == "GET" and body is None:
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, method)
            if body is not None:
                curl.setopt(pycurl.POSTFIELDS, body)
        # "Expect:" stops libcurl from waiting for a 100 Continue before sending a large body.
        curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:"])
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.HEADERFUNCTION, header_lines.append)
        curl.setopt(pycurl.WRITEFUNCTION, body_chunks.append)
        try:
            curl.perform()
        except pycurl.error as err:
            args: tuple[Any, ...] = err.args  # libcurl's error code and message
            code, message = int(args[0]), str(args[1])
            sent = curl.getinfo(pycurl.REQUEST_SIZE) > 0
            raise transport_error(code, message, url, sent=sent) from err
        status: int = curl.getinfo(pycurl.RESPONSE_CODE)
        return CurlResponse(status, header_lines, b"".join(body_chunks))

    def _handle(self) -> pycurl.Curl:
        curl: pycurl.Curl | None = getattr(self._local, "curl", None)
        if curl is None:
            curl = self._local.curl = pycurl.Curl()
            with self._lock:
                self._handles.append(curl)
        return curl

    def _configure(self, curl: pycurl.Curl) -> None:
        config = self._configuration
        curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: the operator is threaded
        # The configuration has resolved any proxy from the environment already (and such a
        # configuration is sent by urllib3, see serves()); libcurl must not look again.
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, 10_000)
        curl.setopt(pycurl.TCP_KEEPALIVE, 1)
        if not config.verify_ssl:
            curl.setopt(pycurl.SSL_VERIFYPEER, 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        if config.ssl_ca_cert:
            curl.setopt(pycurl.CAINFO, config.ssl_ca_cert)
        if config.ca_cert_data:
            data = config.ca_cert_data
            curl.setopt(pycurl.CAINFO_BLOB, data.encode() if isinstance(data, str) else data)
        if config.cert_file:
            curl.setopt(pycurl.SSLCERT, config.cert_file)
        if config.key_file:
            curl.setopt(pycurl.SSLKEY, config.key_file)


def transport_error(code: int, message: str, url: str, *, sent: bool) -> Exception:
    """The error a urllib3 request would have raised for this libcurl failure.

    ``sent`` tells whether any of the request was written: a timeout before that is a
    connect timeout (safe to repeat, whatever the method), after it a read timeout.
    """
    detail = f"libcurl error {code}: {message}"
    if code in _TLS_FAILURES:
        return ApiException(status=0, reason=f"SSLError\n{detail}")
    if code in _CONNECT_FAILURES:
        return urllib3.exceptions.NewConnectionError(None, detail)  # type: ignore[arg-type]
    if code == pycurl.E_OPERATION_TIMEDOUT:
        if not sent:
            return urllib3.exceptions.ConnectTimeoutError(detail)
        return urllib3.exceptions.ReadTimeoutError(None, url, detail)  # type: ignore[arg-type]
    return urllib3.exceptions.ProtocolError(detail)
