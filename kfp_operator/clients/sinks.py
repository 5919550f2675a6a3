"""Where run-completion events go: NATS (optionally JetStream, with acknowledgement) and HTTP.

Sinks fail fast: a sink that is down must not hold a worker, because other Runs'
events and reconciles wait behind it. The NATS sink keeps one connection that
reconnects in the background and refuses to publish while disconnected; HTTP
sinks use short timeouts. Failed deliveries are retried by the caller's work
queue with backoff.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import nats
import structlog
import urllib3
from nats.aio.client import Client as NatsClient

from reconcilers.clients import DeliveryFailed

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT = 5.0
HTTP_TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"


def encode(event: Mapping[str, Any]) -> bytes:
    """The structured-mode CloudEvents JSON encoding."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


class HttpSink:
    """POSTs the event in CloudEvents structured mode; any 2xx is an acknowledgement."""

    def __init__(self, url: str, pool: urllib3.PoolManager | None = None) -> None:
        self.url = url
        self.name = f"http:{url}"
        self._pool = pool or urllib3.PoolManager(retries=False, timeout=HTTP_TIMEOUT)

    def publish(self, event: Mapping[str, Any]) -> None:
        try:
            response = self._pool.request(
                "POST", self.url, body=encode(event), headers={"Content-Type": CLOUDEVENTS_JSON}
            )
        except urllib3.exceptions.HTTPError as error:
            raise DeliveryFailed(f"{self.name}: {type(error).__name__}: {error}") from None
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"{self.name}: HTTP {response.status}")

    def close(self) -> None:
        self._pool.clear()


class NatsSink:
    """Publishes to a NATS subject; with JetStream, waits for the stream's acknowledgement.

    JetStream publishes carry the event id as ``Nats-Msg-Id``, so the stream drops a
    redelivered event within its duplicate window. nats-py is asyncio-based: it runs
    on a private event loop in a daemon thread, and callers block on its futures.
    """

    name = "nats"

    def __init__(self, url: str, subject: str, *, jetstream: bool) -> None:
        self.url = url
        self.subject = subject
        self.jetstream = jetstream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-sink", daemon=True)
        self._thread.start()
        self._client: NatsClient | None = None
        self._connecting = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)

    async def _connect(self) -> None:
        # Keeps trying until the server is reachable; afterwards nats-py reconnects by itself.
        delay = 0.5
        while True:
            try:
                self._client = await nats.connect(
                    self.url,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                log.info("connected to NATS", url=self.url)
                return
            except Exception as error:  # (any failure to connect means: try again)
                log.warning("cannot connect to NATS; retrying", url=self.url, error=str(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS connection error", url=self.url, error=str(error))

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS", url=self.url)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS", url=self.url)

    @property
    def is_connected(self) -> bool:
        client = self._client
        return client is not None and client.is_connected

    def publish(self, event: Mapping[str, Any]) -> None:
        if not self.is_connected:
            raise DeliveryFailed(f"nats: not connected to {self.url}")
        future = asyncio.run_coroutine_threadsafe(self._publish(event), self._loop)
        try:
            future.result(timeout=PUBLISH_TIMEOUT + 1)
        except (FutureTimeout, TimeoutError):
            future.cancel()
            raise DeliveryFailed(f"nats: no acknowledgement within {PUBLISH_TIMEOUT}s") from None
        except Exception as error:  # (nats-py raises many types; all mean "not delivered")
            raise DeliveryFailed(f"nats: {type(error).__name__}: {error}") from None

    async def _publish(self, event: Mapping[str, Any]) -> None:
        assert self._client is not None
        payload = encode(event)
        if self.jetstream:
            await self._client.jetstream().publish(
                self.subject, payload, timeout=PUBLISH_TIMEOUT, headers={"Nats-Msg-Id": str(event["id"])}
            )
        else:
            await self._client.publish(self.subject, payload)
            # Core NATS has no acknowledgement; a flush at least proves the server took the bytes.
            await self._client.flush(timeout=int(PUBLISH_TIMEOUT))

    def close(self) -> None:
        async def shutdown() -> None:
            if self._client is not None and not self._client.is_closed:
                await self._client.drain()

        self._connecting.cancel()
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=PUBLISH_TIMEOUT)
        except Exception as error:  # (closing is best effort)
            log.debug("closing the NATS connection failed", error=str(error))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=PUBLISH_TIMEOUT)
