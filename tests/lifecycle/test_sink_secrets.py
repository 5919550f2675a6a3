"""Sinks are known by their names: no credential in a sink's URL reaches a Run's status, an Event,
/metrics or a log line, and a new URL under the same name sends nothing again."""

from __future__ import annotations

import base64
from pathlib import Path

from kfp_devstack.processes import free_port
from tests.lifecycle.harness import World
from tests.support.http_receiver import HttpReceiver

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
}
SECRETS = ("pw-s3cr3t", "path-s3cr3t", "query-s3cr3t", "file-s3cr3t", "nats-s3cr3t", "header-s3cr3t")


def delivered_to(*names: str):
    return lambda status: set(names) <= set((status.get("completionEvent") or {}).get("deliveredTo") or [])


def test_no_credential_of_a_sink_is_shown_and_a_new_url_under_the_same_name_sends_nothing_again(
    world: World, tmp_path: Path
) -> None:
    world.upload_penguin()
    world.create_experiment()
    url_file, headers_file = tmp_path / "audit-url", tmp_path / "audit-headers"
    headers_file.write_text("Authorization: Bearer header-s3cr3t\n")
    refused = free_port()
    with HttpReceiver() as first, HttpReceiver() as moved, HttpReceiver() as late:
        url_file.write_text(first.url("/hooks/file-s3cr3t?token=file-s3cr3t"))
        bare = f"http://user:pw-s3cr3t@127.0.0.1:{first.port}/hooks/path-s3cr3t?token=query-s3cr3t"
        nats_url = world.nats_url.replace("nats://", "nats://nats-s3cr3t@")

        def events(down_url: str) -> dict:
            return {
                "nats": {"url": nats_url, "subject": world.subject, "jetstream": True},
                "http": {
                    "sinks": [
                        bare,
                        {"name": "audit", "urlFile": str(url_file), "headersFile": str(headers_file)},
                        {"name": "down", "url": down_url},
                    ]
                },
            }

        operator = world.start_operator(
            events=events(f"http://user:pw-s3cr3t@127.0.0.1:{refused}/path-s3cr3t?token=query-s3cr3t")
        )
        name = world.create_run(SPEC)
        bare_name = f"http://127.0.0.1:{first.port}"
        world.wait_run(name, delivered_to("nats", bare_name, "audit"), "delivered to the sinks that are up")
        world.wait_event(name, "EventDeliveryFailing")
        authorization = {r.path.split("?")[0]: r.headers.get("Authorization") for r in first.received}
        assert authorization == {
            "/hooks/path-s3cr3t": "Basic " + base64.b64encode(b"user:pw-s3cr3t").decode(),
            "/hooks/file-s3cr3t": "Bearer header-s3cr3t",
        }

        shown = "\n".join(
            [
                str(world.run(name)),
                str(world.events_for(name)),
                str(world.core.list_namespaced_event(world.namespace).items),
                operator.exposition(),
                operator.log.read_text(),
            ]
        )
        for secret in SECRETS:
            assert secret not in shown, f"{secret} is shown"
        assert f'sink="{bare_name}"' in shown and 'sink="audit"' in shown and 'sink="down"' in shown

        # The audit sink moves; the down sink comes back.
        assert operator.stop() == 0
        url_file.write_text(moved.url())
        world.start_operator(events=events(late.url()))
        world.wait_run(name, lambda s: (s.get("completionEvent") or {}).get("deliveredAt"), "delivered")

        assert len(late.received) == 1
        assert moved.received == []
        assert len(first.received) == 2  # the bare URL's and the audit sink's, once each
