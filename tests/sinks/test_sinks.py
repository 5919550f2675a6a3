"""Event sinks against a real NATS server (JetStream) and a real HTTP receiver."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from kfp_devstack.nats import NatsServer
from kfp_devstack.pki import ensure_pki
from kfp_devstack.processes import free_port
from kfp_devstack.waiting import wait_until
from kfp_operator.clients import sinks
from kfp_operator.clients.sinks import HttpSink, NatsSink
from kfp_operator.settings import HttpSinkConfig, NatsConfig
from reconcilers.clients import DeliveryFailed
from tests.support.http_receiver import HttpReceiver

EVENT = {"specversion": "1.0", "id": "e-1", "type": "org.kubeflow.pipelines.run-completion", "data": {"x": 1}}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(work_dir=tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def nats_sink(url: str, subject: str, *, jetstream: bool) -> NatsSink:
    return NatsSink(NatsConfig(url=url, subject=subject, jetstream=jetstream))


def http_sink(url: str, **options: str) -> HttpSink:
    return HttpSink(HttpSinkConfig(name="receiver", url=url, **options))


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
    sink = nats_sink(nats_server.url, "events", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        sink.publish(EVENT)
        sink.publish(EVENT)  # a redelivery after a crash carries the same id

        assert stream_messages(nats_server.url, "events") == [EVENT]
    finally:
        sink.close()


def test_publishing_without_a_stream_fails(nats_server) -> None:
    sink = nats_sink(nats_server.url, "nostream", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        with pytest.raises(DeliveryFailed):
            sink.publish(EVENT)
    finally:
        sink.close()


def publish_from_threads(sink: NatsSink, threads: int, each: int) -> list[dict]:
    """Publishes ``threads * each`` distinct events, ``threads`` callers at once, as the workers do."""
    events = [{**EVENT, "id": f"e-{t}-{i}"} for t in range(threads) for i in range(each)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(sink.publish, events))
    return events


def test_events_published_by_many_callers_at_once_are_each_acknowledged_once(nats_server) -> None:
    create_stream(nats_server.url, "events")
    sink = nats_sink(nats_server.url, "events", jetstream=True)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        events = publish_from_threads(sink, threads=8, each=40)

        stored = stream_messages(nats_server.url, "events")
        assert sorted(e["id"] for e in stored) == sorted(e["id"] for e in events)
    finally:
        sink.close()


def test_core_nats_events_published_by_many_callers_at_once_all_reach_the_server(nats_server) -> None:
    received: list[bytes] = []

    async def subscribe(ready: threading.Event, done: threading.Event) -> None:
        async def collect(msg: Msg) -> None:
            received.append(msg.data)

        client = await nats.connect(nats_server.url)
        await client.subscribe("events", cb=collect)
        await client.flush()
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.05)
        await client.drain()

    ready, done = threading.Event(), threading.Event()
    subscriber = threading.Thread(target=lambda: asyncio.run(subscribe(ready, done)))
    subscriber.start()
    sink = nats_sink(nats_server.url, "events", jetstream=False)
    try:
        assert ready.wait(10)
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

        events = publish_from_threads(sink, threads=8, each=40)

        wait_until(lambda: len(received) >= len(events), timeout=10, message="every event to arrive")
        assert sorted(json.loads(data)["id"] for data in received) == sorted(e["id"] for e in events)
    finally:
        sink.close()
        done.set()
        subscriber.join()


@pytest.mark.parametrize("jetstream", [True, False], ids=["jetstream", "core"])
def test_an_event_given_up_before_it_was_sent_is_not_sent_and_holds_nothing_up(
    nats_server, jetstream: bool
) -> None:
    create_stream(nats_server.url, "events")
    sink = nats_sink(nats_server.url, "events", jetstream=jetstream)
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")
        given_up = sinks._Outgoing(sinks.encode({**EVENT, "id": "given-up"}), "given-up")
        given_up.acknowledged.cancel()  # its caller timed out while it waited in the outbox

        sink._post(given_up)
        wait_until(lambda: not sink._outbox, timeout=5, message="the sink to take it")
        sink.publish(EVENT)
        sink.publish({**EVENT, "id": "e-2"})

        if jetstream:
            assert [e["id"] for e in stream_messages(nats_server.url, "events")] == ["e-1", "e-2"]
    finally:
        sink.close()


def test_an_event_never_acknowledged_fails_in_time_and_frees_its_slot(
    nats_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks, "PUBLISH_TIMEOUT", 0.5)
    create_stream(nats_server.url, "events")
    # Something listens on the subject but is no stream: the message is taken, never acknowledged.
    listener = nats_sink(nats_server.url, "unused", jetstream=False)
    sink = nats_sink(nats_server.url, "silent", jetstream=True)
    try:
        wait_until(
            lambda: sink.is_connected and listener.is_connected, timeout=10, message="the sinks to connect"
        )
        asyncio.run_coroutine_threadsafe(_listen(listener, "silent"), listener._loop).result(timeout=5)

        with pytest.raises(DeliveryFailed, match=r"no acknowledgement within 0\.5s"):
            sink.publish(EVENT)

        stream = sink._stream
        assert stream is not None
        wait_until(lambda: stream.publish_async_pending() == 0, timeout=5, message="the slot to be freed")
    finally:
        sink.close()
        listener.close()


async def _listen(sink: NatsSink, subject: str) -> None:
    async def ignore(msg: Msg) -> None:
        pass

    assert sink._client is not None
    await sink._client.subscribe(subject, cb=ignore)
    await sink._client.flush()


def test_a_down_server_fails_fast_and_the_sink_recovers_when_it_is_back(nats_server) -> None:
    create_stream(nats_server.url, "events")
    sink = nats_sink(nats_server.url, "events", jetstream=True)
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
    sink = nats_sink(server.url, "events", jetstream=False)
    try:
        with pytest.raises(DeliveryFailed):
            sink.publish(EVENT)
        server.start()
        wait_until(lambda: sink.is_connected, timeout=20, message="the sink to connect")
        sink.publish(EVENT)
    finally:
        sink.close()
        server.stop()


def test_a_graceful_close_drains_without_a_warning(nats_server) -> None:
    sink = nats_sink(nats_server.url, "events", jetstream=False)
    wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")

    with capture_logs() as logs:
        sink.close()

    assert not sink.is_connected
    said = [(entry["log_level"], entry["event"]) for entry in logs if entry["log_level"] != "debug"]
    assert said == [("info", "NATS connection closed")]


def test_closing_a_sink_while_it_reconnects_leaves_no_task_behind(
    nats_server, caplog: pytest.LogCaptureFixture
) -> None:
    def close_while_reconnecting() -> None:
        sink = nats_sink(nats_server.url, "events", jetstream=False)
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect")
        nats_server.kill()
        wait_until(lambda: not sink.is_connected, timeout=10, message="the sink to notice")
        sink.close()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        close_while_reconnecting()
        gc.collect()  # a task left pending is reported when the sink's loop is collected

    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def test_http_sink_posts_a_structured_cloudevent(receiver: HttpReceiver) -> None:
    http_sink(receiver.url()).publish(EVENT)

    [received] = receiver.received
    assert received.headers["Content-Type"].startswith("application/cloudevents+json")
    assert json.loads(received.body) == EVENT


def test_http_sink_fails_on_an_error_status_and_on_a_refused_connection(receiver: HttpReceiver) -> None:
    receiver.status = 503
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        http_sink(receiver.url()).publish(EVENT)

    with pytest.raises(DeliveryFailed, match="cannot connect"):
        http_sink(f"http://127.0.0.1:{free_port()}/events").publish(EVENT)


def test_http_sink_reads_its_url_and_headers_from_files_at_each_delivery(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    url_file, headers_file = tmp_path / "url", tmp_path / "headers"
    url_file.write_text(receiver.url() + "?token=first\n")
    headers_file.write_text("Authorization: Bearer one\nX-Team: ml\n")
    sink = HttpSink(HttpSinkConfig(name="receiver", url_file=str(url_file), headers_file=str(headers_file)))

    sink.publish(EVENT)
    url_file.write_text(receiver.url() + "?token=rotated")
    headers_file.write_text("Authorization: Bearer two\n")
    sink.publish(EVENT)

    first, second = receiver.received
    assert (first.path, first.headers["Authorization"], first.headers["X-Team"]) == (
        "/events?token=first",
        "Bearer one",
        "ml",
    )
    assert (second.path, second.headers["Authorization"]) == ("/events?token=rotated", "Bearer two")


def test_http_sink_failures_never_quote_the_url(tmp_path: Path) -> None:
    port = free_port()
    secret_url = f"http://user:hunter2@127.0.0.1:{port}/hooks/s3cr3t?token=t0k3n"
    with pytest.raises(DeliveryFailed) as refused:
        http_sink(secret_url).publish(EVENT)
    with pytest.raises(DeliveryFailed) as unreadable:
        HttpSink(HttpSinkConfig(name="receiver", url_file=str(tmp_path / "absent"))).publish(EVENT)

    for failure in (refused.value, unreadable.value):
        assert str(failure).startswith("receiver: ")
        for secret in ("hunter2", "s3cr3t", "t0k3n", str(port)):
            assert secret not in str(failure)
        assert failure.__cause__ is None and failure.__suppress_context__


def test_nats_sink_authenticates_with_a_token_file_and_logs_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = NatsServer(work_dir=tmp_path / "nats", options=("--auth=s3cr3t-token",))
    server.start()
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n")
    wrong = NatsSink(NatsConfig(url=f"nats://wrong-token@127.0.0.1:{server.port}", subject="events"))
    sink = NatsSink(NatsConfig(url=server.url, subject="events", token_file=str(token_file)))
    try:
        wait_until(lambda: sink.is_connected, timeout=10, message="the sink to connect with its token")
        sink.publish(EVENT)
        assert not wrong.is_connected
    finally:
        wrong.close()
        sink.close()
        server.stop()
    logs = capsys.readouterr()
    assert "s3cr3t-token" not in logs.out + logs.err
    assert "wrong-token" not in logs.out + logs.err


def test_nats_sink_speaks_tls_to_a_server_signed_by_its_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    server = NatsServer(
        work_dir=tmp_path / "nats",
        options=("--tls", f"--tlscert={pki.serving_cert}", f"--tlskey={pki.serving_key}"),
    )
    server.start()
    trusted = NatsSink(
        NatsConfig(url=f"tls://127.0.0.1:{server.port}", subject="events", ca_file=str(pki.ca_cert))
    )
    untrusted = NatsSink(NatsConfig(url=f"tls://127.0.0.1:{server.port}", subject="events"))
    try:
        wait_until(lambda: trusted.is_connected, timeout=10, message="the sink to connect over TLS")
        trusted.publish(EVENT)
        with pytest.raises(DeliveryFailed, match="not connected"):
            untrusted.publish(EVENT)  # the system's CAs do not know the server's certificate
    finally:
        trusted.close()
        untrusted.close()
        server.stop()


def test_http_sink_checks_the_receivers_certificate_against_its_ca_file(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    with HttpReceiver(cert=(pki.serving_cert, pki.serving_key)) as receiver:
        http_sink(receiver.url(), ca_file=str(pki.ca_cert)).publish(EVENT)
        with pytest.raises(DeliveryFailed, match=r"TLS handshake failed: \[SSL: CERTIFICATE_VERIFY_FAILED\]"):
            http_sink(receiver.url()).publish(EVENT)  # the system's CAs do not know the receiver
        assert len(receiver.received) == 1


def test_an_event_is_encoded_as_compact_utf8_json_with_its_keys_sorted() -> None:
    event = {"type": "run-completion", "data": {"runName": "ns/modèle", "artifacts": []}, "id": "e-1"}
    encoded = sinks.encode(event)
    expected = '{"data":{"artifacts":[],"runName":"ns/modèle"},"id":"e-1","type":"run-completion"}'
    assert encoded == expected.encode()
    assert json.loads(encoded) == event
