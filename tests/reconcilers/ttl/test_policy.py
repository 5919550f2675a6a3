"""TTL decisions: counted from the KFP finish, held until the event is delivered and the RC updated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconcilers.api import RUN_CONFIGURATION_LABEL, TTL_ANNOTATION
from reconcilers.api.run import RunView
from reconcilers.ttl.policy import Delete, Keep, decide
from tests.support.objects import run, run_configuration

FINISHED = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
DELIVERED = {"id": "e", "deliveredTo": ["nats"], "deliveredAt": "2026-01-02T03:00:01Z"}


def completed_run(*, delivered=True, state="Succeeded", annotations=None, labels=None, provider="kfp:r-1"):
    status = {"providerId": provider, "completionState": state, "finishedAt": "2026-01-02T03:00:00Z"}
    if delivered:
        status["completionEvent"] = DELIVERED
    return RunView(run(status=status, annotations=annotations, labels=labels))


def do_decide(view, *, ttl=timedelta(minutes=10), now=FINISHED + timedelta(minutes=11), rc=None, sinks=True):
    return decide(view, default_ttl=ttl, now=now, sinks_configured=sinks, run_configuration=rc)


def test_deleted_once_the_ttl_has_passed_since_the_run_finished() -> None:
    assert do_decide(completed_run()) == Delete(timedelta(minutes=10))


def test_kept_until_the_ttl_passes_with_the_time_left() -> None:
    decision = do_decide(completed_run(), now=FINISHED + timedelta(minutes=4))

    assert decision == Keep("TTL not expired", recheck_after=timedelta(minutes=6))


def test_no_ttl_means_never() -> None:
    assert do_decide(completed_run(), ttl=None) == Keep("no TTL")


def test_zero_means_right_away() -> None:
    assert do_decide(completed_run(), ttl=timedelta(0), now=FINISHED) == Delete(timedelta(0))


def test_the_annotation_overrides_the_global_ttl() -> None:
    view = completed_run(annotations={TTL_ANNOTATION: "1h"})

    assert do_decide(view).recheck_after == timedelta(minutes=49)
    assert do_decide(completed_run(annotations={TTL_ANNOTATION: "30s"}), ttl=None) == Delete(
        timedelta(seconds=30)
    )


@pytest.mark.parametrize("annotation", ["soon", "-5m", "-0.5s"])
def test_an_invalid_or_negative_annotation_is_reported_and_the_global_ttl_applies(annotation) -> None:
    view = completed_run(annotations={TTL_ANNOTATION: annotation})

    expired = do_decide(view)
    assert isinstance(expired, Delete)
    assert expired.ttl == timedelta(minutes=10)
    assert expired.problem is not None and expired.problem.startswith(f"invalid {TTL_ANNOTATION} annotation")
    assert "runCompletionTTL (600s) applies" in expired.problem

    not_yet = do_decide(view, now=FINISHED + timedelta(minutes=1))
    assert isinstance(not_yet, Keep) and not_yet.recheck_after == timedelta(minutes=9)


@pytest.mark.parametrize("annotation", ["soon", "-5m"])
def test_an_invalid_annotation_without_a_global_ttl_keeps_the_run(annotation) -> None:
    decision = do_decide(completed_run(annotations={TTL_ANNOTATION: annotation}), ttl=None)

    assert isinstance(decision, Keep) and decision.reason == "no TTL"
    assert decision.problem is not None and "the Run is kept" in decision.problem


def test_held_until_the_completion_event_is_delivered() -> None:
    assert do_decide(completed_run(delivered=False)) == Keep("completion event not delivered yet")
    assert do_decide(completed_run(delivered=False), sinks=False) == Delete(timedelta(minutes=10))


def test_held_until_the_run_configuration_reflects_the_run() -> None:
    view = completed_run(labels={RUN_CONFIGURATION_LABEL: "rc"})
    stale = run_configuration("rc", succeeded={"providerId": "kfp:old", "finishedAt": "2026-01-01T00:00:00Z"})
    current = run_configuration(
        "rc", succeeded={"providerId": "kfp:r-1", "finishedAt": "2026-01-02T03:00:00Z"}
    )
    newer = run_configuration("rc", succeeded={"providerId": "kfp:new", "finishedAt": "2026-01-02T04:00:00Z"})

    assert do_decide(view, rc=stale) == Keep("RunConfiguration not updated yet")
    assert do_decide(view, rc=current) == Delete(timedelta(minutes=10))
    assert do_decide(view, rc=newer) == Delete(timedelta(minutes=10))


def test_a_failed_run_does_not_wait_for_its_run_configuration() -> None:
    view = completed_run(state="Failed", labels={RUN_CONFIGURATION_LABEL: "rc"})

    assert do_decide(view, rc=run_configuration("rc")) == Delete(timedelta(minutes=10))


def test_incomplete_runs_are_kept() -> None:
    assert do_decide(RunView(run())) == Keep("not completed")
