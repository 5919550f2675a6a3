"""TTL cleanup: counted from the KFP finish, per-Run override, and never before the event is delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kfp_devstack.nats import NatsServer, ensure_stream
from kfp_devstack.waiting import wait_until
from reconcilers.timestamps import parse_time
from tests.lifecycle.harness import EVENTS_STREAM, TIMEOUT, World

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}
TTL_ANNOTATION = "pipelines.kubeflow.org/ttl-after-completion"


def prepare(world: World) -> None:
    world.upload_penguin()
    world.create_experiment()


def test_a_completed_run_is_deleted_once_its_ttl_has_passed(world: World) -> None:
    prepare(world)
    operator = world.start_operator(runCompletionTTL="3s")
    name = world.create_run(SPEC)
    status = world.wait_run(name, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")

    world.wait_gone(name)

    deleted_at = datetime.now(UTC)
    assert deleted_at >= parse_time(status["finishedAt"]) + timedelta(seconds=3)
    world.wait_event(name, "DeletedAfterTTL")
    assert operator.metric("kfp_operator_ttl_deletions_total") == 1


def test_the_annotation_overrides_the_global_ttl(world: World) -> None:
    prepare(world)
    world.start_operator()  # no global TTL: Runs are kept
    kept = world.create_run(SPEC)
    expiring = world.create_run(SPEC, annotations={TTL_ANNOTATION: "1s"})

    world.wait_gone(expiring)

    assert world.wait_completed(kept)["completionState"] == "Succeeded"
    assert world.run(kept) is not None


def test_a_zero_ttl_deletes_right_after_the_event_is_delivered(world: World) -> None:
    prepare(world)
    world.start_operator(runCompletionTTL="0s")

    name = world.create_run(SPEC)

    world.wait_gone(name)
    [event] = world.published_events()
    assert event["data"]["runName"] == f"{world.namespace}/{name}"


def test_a_run_is_kept_while_its_event_cannot_be_delivered(world: World, tmp_path: Path) -> None:
    prepare(world)
    nats = NatsServer(work_dir=tmp_path / "nats")
    nats.start()
    ensure_stream(nats.url, EVENTS_STREAM, ["events.>"])
    try:
        world.nats_url = nats.url
        operator = world.start_operator(runCompletionTTL="1s")
        nats.kill()
        name = world.create_run(SPEC)
        status = world.wait_completed(name)

        # Past the TTL, still kept: the event has not been delivered.
        expiry = parse_time(status["finishedAt"]) + timedelta(seconds=1)
        wait_until(
            lambda: (
                datetime.now(UTC) > expiry + timedelta(seconds=2)
                and operator.metric("kfp_operator_event_deliveries_total", sink="nats", result="failed") >= 2
            ),
            timeout=TIMEOUT,
            message="the TTL to pass while deliveries fail",
        )
        assert world.run(name) is not None
        assert not (world.status(name).get("completionEvent") or {}).get("deliveredAt")
        world.wait_event(name, "EventDeliveryFailing")

        nats.start()  # same port and store: the operator reconnects
        world.wait_gone(name)
        assert [e["data"]["runName"] for e in world.published_events()] == [f"{world.namespace}/{name}"]
    finally:
        nats.stop()


def test_a_negative_annotation_is_reported_and_never_deletes_early(world: World) -> None:
    prepare(world)
    world.start_operator()  # no global TTL: a Run is kept unless its own TTL is valid
    name = world.create_run(SPEC, annotations={TTL_ANNOTATION: "-5m"})

    world.wait_completed(name)
    events = world.wait_events(
        name, lambda events: any(r == "InvalidTTL" for _, r, _ in events), "an InvalidTTL Event"
    )

    assert any(t == "Warning" and "is negative" in m for t, r, m in events if r == "InvalidTTL")
    assert world.run(name) is not None
