"""How the operator's Kubernetes requests travel: rate limit, metrics, and the retry policy.

**Every HTTP request** made through ``controller.kube.Kube``, typed API classes built on its
``api_client`` included, passes through :class:`InstrumentedRESTClient`, which sends the
operator's unary requests other than POSTs with libcurl where it can (``controller.libcurl``
says why and when) and everything else (POSTs, watches, typed API classes) with the client's
urllib3 pool, and which

* waits for a token from a client-side token bucket (``kube.qps``/``kube.burst``; the Python
  client has none of its own), and
* counts the request in ``rest_client_requests_total{code,method,host}``, with ``code`` the
  HTTP status or ``"<error>"`` when no response arrived (client-go's ``sanitize``). Watches
  count once, as ``GET``, when their response starts; every retry attempt counts, and
* hands the response's ``Warning`` headers to a handler (``controller.apiwarnings``, which
  logs each distinct warning once); over libcurl, only the responses whose headers it reads.

**Retries: exactly one layer per call.** urllib3's own retries are switched off
(``Configuration.retries = False``), so the layers cannot multiply:

* Calls made on a loop that already retries with its own backoff are made once: the
  reflector's list and watch, leader election's lease calls (its retry period), and **every
  call made inside a reconcile**, because the work queue's per-item rate limiter is the retry
  layer there. The runner enters :func:`retries_disabled` around each reconcile; a reconciler
  cannot opt back in.
* Everything else (the event recorder's writer thread, start-up calls, tools) retries
  transient failures with tenacity (:func:`retrying`), within a small budget
  (:data:`RETRY_ATTEMPTS` attempts and :data:`RETRY_BUDGET` seconds): connection failures,
  429 (honouring ``Retry-After``; one beyond the budget ends the retries) and 5xx. A request
  that may have reached the server is only retried when repeating it is harmless (not for
  ``POST``, except 429/503, which the server sends before doing anything).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlparse

import structlog
import urllib3
import urllib3.exceptions
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTClientObject, RESTResponse
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from controller.apiwarnings import DEFAULT_HANDLER, WarningHandler
from controller.libcurl import REPEATABLE_METHODS, CurlResponse, CurlSession, TlsOptions
from controller.metrics import LabelledChildren, Metrics
from controller.ratelimit import TokenBucket

log = structlog.get_logger("controller.transport")

RETRY_ATTEMPTS = 4
RETRY_BUDGET = 10.0

T = TypeVar("T")

_retries_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kube_retries_disabled", default=False
)


def retries_enabled() -> bool:
    """Whether API calls made here and now may be retried (false inside a reconcile)."""
    return not _retries_disabled.get()


@contextlib.contextmanager
def retries_disabled() -> Iterator[None]:
    """Within this context (thread or task), API calls are made once and never retried here."""
    token = _retries_disabled.set(True)
    try:
        yield
    finally:
        _retries_disabled.reset(token)


class InstrumentedRESTClient(RESTClientObject):
    """The client's REST layer with a token bucket in front and a request counter behind.

    :meth:`exchange` and :meth:`send` are the operator's own path (``controller.kube.Kube``): a
    body already encoded, straight to libcurl (``exchange``, when ``use_libcurl`` and the
    configuration allows) or to the connection pool. :meth:`request` is the client's, for
    typed API classes built on the same ``ApiClient``.
    """

    def __init__(
        self,
        configuration: Configuration,
        metrics: Metrics,
        limiter: TokenBucket,
        *,
        use_libcurl: bool = True,
        warnings: WarningHandler = DEFAULT_HANDLER,
    ) -> None:
        super().__init__(configuration)
        self._requests = LabelledChildren(metrics.rest_client_requests)
        self._limiter = limiter
        self._warnings = warnings
        self._host = urlparse(configuration.host).netloc
        self.curl = CurlSession(tls_options(configuration)) if use_libcurl and serves(configuration) else None

    def _count(self, code: str, method: str) -> None:
        self._requests(code, method, self._host).inc()

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> RESTResponse:
        self._limiter.wait()
        method = method.upper()
        try:
            # The client's own method is untyped; it returns its RESTResponse.
            response: RESTResponse = super().request(  # type: ignore[no-untyped-call]
                method,
                url,
                headers=headers,
                body=body,
                post_params=post_params,
                _request_timeout=_request_timeout,
            )
        except ApiException as err:
            self._count(str(err.status) if err.status else "<error>", method)
            self._warnings(_warning_values(err.headers))
            raise
        except Exception:
            self._count("<error>", method)
            raise
        self._count(str(response.status), method)
        self._warnings(_warning_values(response.headers))
        return response

    def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
        *,
        repeat_safe: bool = False,
    ) -> CurlResponse | RESTResponse:
        """Sends one request whose body is already encoded and returns the response, read
        whole, over libcurl when it may be repeated (not a POST, unless the caller vouches
        with ``repeat_safe`` that a repeat is harmless: ``controller.libcurl``). Transport
        failures are raised as :meth:`send` raises them."""
        if self.curl is None or not (repeat_safe or method in REPEATABLE_METHODS):
            response = self.send(method, url, headers, body, timeout)
            response.read()
            return response
        self._limiter.wait()
        with self._no_response(method):
            curl_response = self.curl.request(method, url, headers, body, timeout, repeat_safe=repeat_safe)
        self._count(str(curl_response.status), method)
        if curl_response.warnings:
            self._warnings(curl_response.warnings)
        return curl_response

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | tuple[float, float],
    ) -> RESTResponse:
        """Sends one request whose body is already encoded, and returns the response unread
        (streamed, for watches). Raises urllib3's errors for transport failures, and an
        ``ApiException`` with status 0 for a TLS failure, as the client's own path does."""
        self._limiter.wait()
        with self._no_response(method):
            response = self.pool_manager.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=_timeout(timeout),
                preload_content=False,
            )
        self._count(str(response.status), method)
        self._warnings(response.headers.getlist("Warning"))
        return RESTResponse(response)

    @contextlib.contextmanager
    def _no_response(self, method: str) -> Iterator[None]:
        """Counts a request that got no response as ``<error>``, and raises a TLS failure as
        the client's own path does: an ``ApiException`` with status 0."""
        try:
            yield
        except urllib3.exceptions.SSLError as err:
            self._count("<error>", method)
            raise ApiException(status=0, reason=f"{type(err).__name__}\n{err}") from err
        except Exception:
            self._count("<error>", method)
            raise


def _warning_values(headers: Any) -> list[str]:
    """The ``Warning`` values of a response's headers (urllib3's, or none)."""
    getlist = getattr(headers, "getlist", None)
    return getlist("Warning") if getlist is not None else []


def serves(configuration: Configuration) -> bool:
    """Whether libcurl makes this configuration's requests exactly as urllib3 would: not
    through a proxy, and with no TLS server name, hostname override or socket options."""
    return not (
        configuration.proxy
        or configuration.tls_server_name
        or configuration.assert_hostname is not None
        or configuration.socket_options is not None
    )


def tls_options(configuration: Configuration) -> TlsOptions:
    data = configuration.ca_cert_data
    return TlsOptions(
        verify=bool(configuration.verify_ssl),
        ca_file=configuration.ssl_ca_cert,
        ca_data=data.encode() if isinstance(data, str) else data,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
    )


def _timeout(timeout: float | tuple[float, float]) -> urllib3.Timeout:
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=timeout)


_CONNECT_ERRORS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
_AFTER_SEND_ERRORS = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, ConnectionError)


def is_transient(err: BaseException, method: str) -> bool:
    """Whether a failed request may be repeated and may succeed when repeated."""
    if isinstance(err, ApiException):
        status = err.status or 0
        if status in (429, 503):
            return True
        return method != "POST" and status in (500, 502, 504)
    if isinstance(err, _CONNECT_ERRORS):
        return True  # the request never left
    return method != "POST" and isinstance(err, _AFTER_SEND_ERRORS)


def retry_after(err: BaseException | None) -> float | None:
    """The server's ``Retry-After`` in seconds, if the error carries one."""
    if not isinstance(err, ApiException) or not err.headers:
        return None
    value = err.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class _WaitRetryAfter:
    """Waits what the server asked for, else exponential backoff (0.1 s doubling, jittered).

    A ``Retry-After`` longer than what is left of the budget ends the retries (the stop
    condition sees the upcoming wait) rather than retrying sooner than the server asked.
    """

    def __init__(self) -> None:
        self._fallback = wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        asked = retry_after(outcome.exception() if outcome else None)
        if asked is not None:
            return asked
        return self._fallback(retry_state)


def retrying(method: str, path: str, spent: float = 0.0) -> Retrying:
    """The retry policy for one request outside a reconcile (see the module docstring);
    ``spent`` is what the budget already paid for (a first attempt made by :func:`retried`)."""
    return Retrying(
        retry=retry_if_exception(lambda err: is_transient(err, method)),
        stop=stop_after_attempt(RETRY_ATTEMPTS) | stop_before_delay(RETRY_BUDGET - spent),
        wait=_WaitRetryAfter(),
        reraise=True,
        before_sleep=_log_retry(method, path),
    )


def retried(attempt: Callable[[], T], policy: Callable[[float], Retrying]) -> T:
    """``attempt()`` under a tenacity policy, the first attempt made outside it.

    Almost every request succeeds at once, and tenacity's machinery (a ``RetryCallState``, a
    future per attempt, its action lists) costs about 20 µs a call, more on a busy machine; in a
    burst each Run's two Events go out through it. So the first attempt is made directly; when it
    fails, ``policy(seconds it took)`` takes over with that failure as its own first attempt (its
    retry test, wait, log and attempt count see it, and it is not made again).
    """
    started = time.monotonic()
    try:
        return attempt()
    except Exception as error:
        first: Exception | None = error

    def again() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return attempt()

    return policy(time.monotonic() - started)(again)


def _log_retry(method: str, path: str) -> Callable[[RetryCallState], None]:
    def before_sleep(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        err = outcome.exception() if outcome else None
        log.info(
            "retrying API request",
            method=method,
            path=path,
            attempt=retry_state.attempt_number,
            wait=round(retry_state.upcoming_sleep, 3),
            error=f"{type(err).__name__}: {getattr(err, 'status', '') or err}",
        )

    return before_sleep
