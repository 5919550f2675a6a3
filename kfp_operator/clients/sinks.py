"""Where run-completion events go: NATS (optionally JetStream, with acknowledgement) and HTTP.

Sinks fail fast: a sink that is down must not hold a worker, because other Runs'
events and reconciles wait behind it. The NATS sink keeps one connection that
reconnects in the background and refuses to publish while disconnected; HTTP
sinks use short timeouts. Failed deliveries are retried by the caller's work
queue with backoff.

A sink is known by its name. Its address may hold credentials (``user:password@``,
``?token=``), so neither its URL nor the text of a client library's error (which often
quotes the URL) ever reaches a log line, an Event, a metric label or a status: errors are
described by their kind, and the server by its host and port.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import nats
import orjson
import structlog
import urllib3
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from controller.settings.values import url_origin
from kfp_operator.clients.http_failures import describe_http_failure
from kfp_operator.settings import NATS_SINK, HttpSinkConfig, NatsConfig
from reconcilers.clients import DeliveryFailed

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT = 5.0
HTTP_TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"


def encode(event: Mapping[str, Any]) -> bytes:
    """The structured-mode CloudEvents JSON encoding: compact, keys sorted, UTF-8 (orjson: a
    fourteenth of the standard library's time for an event, on a worker completing a Run)."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def basic_auth(url: str) -> dict[str, str]:
    """The ``Authorization`` header for a URL's ``user:password@``, as curl and browsers send it."""
    parsed = urllib3.util.parse_url(url)
    if not parsed.auth:
        return {}
    user, _, password = parsed.auth.partition(":")
    credentials = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def without_userinfo(url: str) -> str:
    return urllib3.util.parse_url(url)._replace(auth=None).url


class HttpSink:
    """POSTs the event in CloudEvents structured mode; any 2xx is an acknowledgement.

    The URL and the extra headers (for example ``Authorization``) may come from files mounted
    from a Secret; they are read at each delivery, so a rotated credential is used at once. A
    URL's ``user:password@`` is sent as basic authentication; a header from the file wins.
    """

    def __init__(self, config: HttpSinkConfig, pool: urllib3.PoolManager | None = None) -> None:
        self.name = config.name
        self._config = config
        self._pool = pool or urllib3.PoolManager(
            retries=False,
            timeout=HTTP_TIMEOUT,
            cert_reqs="CERT_REQUIRED",
            ca_certs=config.ca_file or None,  # None: the system's CA bundle
        )

    def publish(self, event: Mapping[str, Any]) -> None:
        try:
            url, headers = self._address()
            response = self._pool.request(
                "POST", url, body=encode(event), headers={**headers, "Content-Type": CLOUDEVENTS_JSON}
            )
        except OSError as error:
            raise DeliveryFailed(
                f"{self.name}: cannot read its url or headers file ({error.strerror})"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise DeliveryFailed(f"{self.name}: {describe_http_failure(error)}") from None
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"{self.name}: HTTP {response.status}")

    def _address(self) -> tuple[str, urllib3.HTTPHeaderDict]:
        url = self._config.url or Path(self._config.url_file).read_text().strip()
        headers = urllib3.HTTPHeaderDict(basic_auth(url))
        url = without_userinfo(url)
        if self._config.headers_file:
            for line in Path(self._config.headers_file).read_text().splitlines():
                key, colon, value = line.partition(":")
                if colon and key.strip():
                    headers[key.strip()] = value.strip()
        return url, headers

    def close(self) -> None:
        self._pool.clear()


class NatsSink:
    """Publishes to a NATS subject; with JetStream, waits for the stream's acknowledgement.

    JetStream publishes carry the event id as ``Nats-Msg-Id``, so the stream drops a
    redelivered event within its duplicate window. Credentials come from files (a creds file,
    an NKey seed, a token) or the URL; TLS is used for ``tls://`` URLs and whenever a CA
    bundle is given.

    nats-py is asyncio-based: it runs on a private event loop in a daemon thread. Callers
    (the operator's workers) put their events in an outbox and block until theirs is
    acknowledged; one task on the loop sends whatever the outbox holds, a batch at a time
    (:meth:`_drain`). Handing each publish to the loop as a task of its own, with nats-py's
    ``request`` and its timer, cost about a quarter more CPU per event when several workers
    publish at once (measured against a real server with eight threads publishing), and woke
    the loop once per event. A JetStream batch is published with ``publish_async``, whose
    acknowledgements settle each event as they arrive; a core NATS batch is followed by one
    flush, whose PONG proves the server read every message sent before it.
    """

    name = NATS_SINK

    def __init__(self, config: NatsConfig) -> None:
        self._config = config
        self.subject = config.subject
        self.jetstream = config.jetstream
        self.server = url_origin(config.url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-sink", daemon=True)
        self._thread.start()
        self._client: NatsClient | None = None
        self._stream: JetStreamContext | None = None
        # Set by close(): the disconnection it causes is expected, not worth a warning.
        self._closing = False
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_lock = threading.Lock()
        self._draining = False  # a _drain task is scheduled or running; under _outbox_lock
        self._drainer: asyncio.Task[None] | None = None
        self._connecting = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)

    def _options(self) -> dict[str, Any]:
        config = self._config
        options: dict[str, Any] = {}
        if config.creds_file:
            options["user_credentials"] = config.creds_file
        if config.nkey_seed_file:
            options["nkeys_seed"] = config.nkey_seed_file
        if config.token_file:
            options["token"] = Path(config.token_file).read_text().strip()
        if config.ca_file:
            options["tls"] = ssl.create_default_context(cafile=config.ca_file)
        return options

    async def _connect(self) -> None:
        # Keeps trying until the server is reachable; afterwards nats-py reconnects by itself.
        delay = 0.5
        while True:
            try:
                client = await nats.connect(
                    self._config.url,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    **self._options(),
                )
                self._stream = client.jetstream()
                self._client = client
                log.info("connected to NATS", server=self.server)
                return
            except Exception as error:  # (any failure to connect means: try again)
                log.warning(
                    "cannot connect to NATS; retrying", server=self.server, error=type(error).__name__
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS connection error", server=self.server, error=type(error).__name__)

    async def _on_disconnected(self) -> None:
        if self._closing:
            log.info("NATS connection closed", server=self.server)
        else:
            log.warning("disconnected from NATS", server=self.server)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS", server=self.server)

    @property
    def is_connected(self) -> bool:
        client = self._client
        return client is not None and client.is_connected

    def publish(self, event: Mapping[str, Any]) -> None:
        if not self.is_connected:
            raise DeliveryFailed(f"{self.name}: not connected to {self.server}")
        outgoing = _Outgoing(encode(event), str(event["id"]))
        self._post(outgoing)
        try:
            outgoing.acknowledged.result(timeout=PUBLISH_TIMEOUT)
        except FutureTimeout:
            # Not sent yet: it never will be. Sent: JetStream stops waiting for its acknowledgement.
            outgoing.acknowledged.cancel()
            self._loop.call_soon_threadsafe(outgoing.abandon)
            raise DeliveryFailed(f"{self.name}: no acknowledgement within {PUBLISH_TIMEOUT}s") from None
        except Exception as error:  # (nats-py raises many types; all mean "not delivered")
            raise DeliveryFailed(f"{self.name}: {type(error).__name__}") from None

    def _post(self, outgoing: _Outgoing) -> None:
        """Puts ``outgoing`` in the outbox, and wakes the loop unless a drain will take it."""
        with self._outbox_lock:
            self._outbox.append(outgoing)
            if self._draining:
                return
            self._draining = True
        self._loop.call_soon_threadsafe(self._start_draining)

    def _start_draining(self) -> None:
        # The loop keeps only a weak reference to its tasks.
        self._drainer = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        """Sends the outbox's events, a batch at a time, until none is left."""
        while True:
            with self._outbox_lock:
                if not self._outbox:
                    self._draining = False
                    return
                taken = list(self._outbox)
                self._outbox.clear()
            # What a caller gave up on before it was sent stays unsent.
            batch = [outgoing for outgoing in taken if outgoing.acknowledged.set_running_or_notify_cancel()]
            try:
                if self.jetstream:
                    await self._publish_to_stream(batch)
                elif batch:
                    await self._publish_and_flush(batch)
            except Exception as error:  # (whatever went wrong, the outbox is not stuck behind it)
                for outgoing in batch:
                    outgoing.fail(error)

    async def _publish_to_stream(self, batch: list[_Outgoing]) -> None:
        assert self._stream is not None
        for outgoing in batch:
            try:
                # Waits only while 4,000 acknowledgements are outstanding (nats-py's bound); a
                # caller that stops waiting frees its own (_Outgoing.abandon).
                acknowledgement = await self._stream.publish_async(
                    self.subject, outgoing.payload, headers={"Nats-Msg-Id": outgoing.event_id}
                )
            except Exception as error:  # (not sent: this event fails, the batch goes on)
                outgoing.fail(error)
                continue
            outgoing.awaiting = acknowledgement
            acknowledgement.add_done_callback(outgoing.settle)

    async def _publish_and_flush(self, batch: list[_Outgoing]) -> None:
        # Core NATS has no acknowledgement; a flush at least proves the server took the bytes.
        assert self._client is not None
        for outgoing in batch:
            await self._client.publish(self.subject, outgoing.payload)
        await self._client.flush(timeout=int(PUBLISH_TIMEOUT))
        for outgoing in batch:
            outgoing.succeed()

    def close(self) -> None:
        """Drains the connection (what was published reaches the server) and stops the loop with
        nothing left running on it."""
        self._closing = True
        self._connecting.cancel()
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=PUBLISH_TIMEOUT + 1)
        except Exception as error:  # (closing is best effort)
            log.debug("closing the NATS connection failed", error=type(error).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=PUBLISH_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        client = self._client
        if client is not None and not client.is_closed:
            try:
                await client.drain()
            except Exception as error:  # (a connection that is reconnecting cannot drain)
                log.debug("draining the NATS connection failed; closing it", error=type(error).__name__)
                await client.close()
        # What nats-py may still have running (a reconnection attempt, a timer) is cancelled and
        # awaited: a task left pending on the stopped loop would be reported by asyncio, on
        # stderr and outside the structured log, as "Task was destroyed but it is pending!".
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


class _Outgoing:
    """One event between a caller of :meth:`NatsSink.publish` and the server.

    ``acknowledged`` is what the caller waits on; the sink's loop resolves it, and is the only
    one to touch ``awaiting`` (JetStream's acknowledgement, once the event was sent).
    """

    __slots__ = ("acknowledged", "awaiting", "event_id", "payload")

    def __init__(self, payload: bytes, event_id: str) -> None:
        self.payload = payload
        self.event_id = event_id
        self.acknowledged: Future[None] = Future()
        self.awaiting: asyncio.Future[Any] | None = None

    def succeed(self) -> None:
        if not self.acknowledged.done():
            self.acknowledged.set_result(None)

    def fail(self, error: BaseException) -> None:
        if not self.acknowledged.done():
            self.acknowledged.set_exception(error)

    def settle(self, acknowledgement: asyncio.Future[Any]) -> None:
        """JetStream answered (or the caller gave up and :meth:`abandon` cancelled the wait)."""
        if acknowledgement.cancelled():
            self.fail(TimeoutError("abandoned"))
        elif (error := acknowledgement.exception()) is not None:
            self.fail(error)
        else:
            self.succeed()

    def abandon(self) -> None:
        """The caller stopped waiting: frees the slot nats-py keeps for the acknowledgement."""
        if self.awaiting is not None and not self.awaiting.done():
            self.awaiting.cancel()
