"""A RunConfiguration's latest succeeded run: newest by KFP finish time, never replaced by an older one."""

from __future__ import annotations

from reconcilers.api.run import RunView
from reconcilers.runconfiguration.latest import desired_latest, latest_succeeded
from tests.support.objects import run


def finished(name: str, at: str, state: str = "Succeeded") -> RunView:
    return RunView(
        run(
            name=name,
            status={
                "providerId": f"kfp:{name}",
                "completionState": state,
                "finishedAt": at,
                "artifacts": [{"name": "examples", "location": f"s3://{name}"}],
            },
        )
    )


def test_the_newest_succeeded_run_wins() -> None:
    runs = [
        finished("a", "2026-01-02T03:00:00Z"),
        finished("b", "2026-01-02T05:00:00Z", state="Failed"),
        finished("c", "2026-01-02T04:00:00Z"),
        RunView(run(name="d")),
    ]

    assert latest_succeeded(runs).name == "c"


def test_the_desired_reference_carries_run_name_time_and_artifacts() -> None:
    assert desired_latest({}, finished("c", "2026-01-02T04:00:00Z")) == {
        "providerId": "kfp:c",
        "artifacts": [{"name": "examples", "location": "s3://c"}],
        "runName": "ns/c",
        "finishedAt": "2026-01-02T04:00:00Z",
    }


def test_an_older_run_never_replaces_a_newer_one() -> None:
    current = {"providerId": "kfp:new", "finishedAt": "2026-01-02T06:00:00Z"}

    assert desired_latest(current, finished("old", "2026-01-02T04:00:00Z")) is None


def test_an_unchanged_reference_needs_no_update() -> None:
    candidate = finished("c", "2026-01-02T04:00:00Z")

    assert desired_latest(desired_latest({}, candidate), candidate) is None


def test_a_reference_without_a_time_is_replaced() -> None:
    assert desired_latest({"providerId": "kfp:manual"}, finished("c", "2026-01-02T04:00:00Z")) is not None
