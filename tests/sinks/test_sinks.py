"""Event sinks against a real NATS server (JetStream) and a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
import pytest

from kfp_devstack.nats import NatsServer
from kfp_devstack.processes import free_port
from kfp_devstack.waiting import wait_until
from kfp_operator.clients.sinks import HttpSink, NatsSink
from reconcilers.clients import DeliveryFailed

EVENT = {"specversion": "1.0", "id": "e-1", "type": "org.kubeflow.pipelines.run-completion", "data": {"x": 1}}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(work_dir=tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def stream_messages(url: str, subject: str) -> list[dict]:
    async def read() -> list[dict]:
        client = await nats.connect(url)
        js = client.jetstream()
        info = await js.stream_info("EVENTS")
        messages = []
        for sequence in range(1, info.state.last_seq + 1):
            messages.append(json.loads((await js.get_msg("EVENTS", sequence)).data))
        await client.close()
        return messages

    return asyncio.run(read())


def create_stream(url: str, subject: str) -> None:
    async def create() -> None:
        client = await nats.connect(url)
        await client.jetstream().add_stream(name="EVENTS", subjects=[subject])
        await client.close()

    asyncio.run(create())


def test_jetstream_publish_is_acknowledged_and_deduplicated_by_event_id(nats_server) -> None:
    create_stream(nats_server.url, "events")
    sink = NatsSink(nats_server.url, "events", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        sink.publish(EVENT)
        sink.publish(EVENT)  # a redelivery after a crash carries the same id

        assert stream_messages(nats_server.url, "events") == [EVENT]
    finally:
        sink.close()


def test_publishing_without_a_stream_fails(nats_server) -> None:
    sink = NatsSink(nats_server.url, "nostream", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        with pytest.raises(DeliveryFailed):
            sink.publish(EVENT)
    finally:
        sink.close()


def test_a_down_server_fails_fast_and_the_sink_recovers_when_it_is_back(nats_server) -> None:
    create_stream(nats_server.url, "events")
    sink = NatsSink(nats_server.url, "events", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")
        port = nats_server.port
        nats_server.kill()
        wait_until(lambda: not sink.is_connected, timeout=10, message="the sink to notice")

        with pytest.raises(DeliveryFailed, match="not connected"):
            sink.publish(EVENT)

        nats_server.port = port
        nats_server.start()
        wait_until(lambda: sink.is_connected, timeout=20, message="the sink to reconnect")
        sink.publish(EVENT)
        assert EVENT in stream_messages(nats_server.url, "events")
    finally:
        sink.close()


def test_a_sink_that_starts_before_the_server_connects_later(tmp_path: Path) -> None:
    server = NatsServer(work_dir=tmp_path / "nats", port=free_port())
    sink = NatsSink(server.url, "events", jetstream=False)
    try:
        with pytest.raises(DeliveryFailed):
            sink.publish(EVENT)
        server.start()
        wait_until(lambda: sink.is_connected, timeout=20, message="the sink to connect")
        sink.publish(EVENT)
    finally:
        sink.close()
        server.stop()


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []
    status = 202

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.headers["Content-Type"], body))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    Receiver.status = 202
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events"
    server.shutdown()


def test_http_sink_posts_a_structured_cloudevent(receiver: str) -> None:
    HttpSink(receiver).publish(EVENT)

    content_type, body = Receiver.received[0]
    assert content_type.startswith("application/cloudevents+json")
    assert json.loads(body) == EVENT


def test_http_sink_fails_on_an_error_status_and_on_a_refused_connection(receiver: str) -> None:
    Receiver.status = 503
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        HttpSink(receiver).publish(EVENT)

    with pytest.raises(DeliveryFailed):
        HttpSink(f"http://127.0.0.1:{free_port()}/events").publish(EVENT)
