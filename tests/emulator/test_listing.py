"""Filters, sorting and pagination with the server's semantics (docs/emulator.md §5)."""

from __future__ import annotations

import base64
import json

import pytest
from kfp_server_api import V2beta1Experiment
from kfp_server_api.exceptions import ApiException

from tests.emulator.helpers import error_body, raw_call, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


@pytest.fixture
def family(kfp):
    """Experiments sharing a unique prefix, so filters can be scoped to them."""
    prefix = unique("fam")
    names = [f"{prefix}-alpha", f"{prefix}-Beta", f"{prefix}-gamma", f"{prefix}-a b", f"{prefix}-a_c"]
    for name in names:
        kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(display_name=name))
    return prefix, names


def _filter(*predicates):
    return json.dumps({"predicates": list(predicates)})


def _in_family(prefix):
    return {"key": "display_name", "operation": "IS_SUBSTRING", "string_value": prefix}


def _names(kfp, *predicates, **kwargs):
    listed = kfp.experiments.experiment_service_list_experiments(filter=_filter(*predicates), **kwargs)
    return sorted(e.display_name for e in listed.experiments or [])


def _list_error(kfp, **kwargs):
    with pytest.raises(ApiException) as raised:
        kfp.experiments.experiment_service_list_experiments(**kwargs)
    assert raised.value.status == 400
    return error_body(raised.value)["message"]


def test_equals_and_not_equals_ignore_case(kfp, family):
    prefix, _ = family
    equals = {"key": "display_name", "operation": "EQUALS", "string_value": f"{prefix}-BETA"}
    not_equals = {"key": "display_name", "operation": "NOT_EQUALS", "string_value": f"{prefix}-ALPHA"}

    assert _names(kfp, _in_family(prefix), equals) == [f"{prefix}-Beta"]
    assert _names(kfp, _in_family(prefix), not_equals) == sorted(
        [f"{prefix}-Beta", f"{prefix}-gamma", f"{prefix}-a b", f"{prefix}-a_c"]
    )


def test_ordering_operations_compare_strings_and_timestamps(kfp, family):
    prefix, _ = family
    after_beta = {"key": "display_name", "operation": "GREATER_THAN", "string_value": f"{prefix}-beta"}
    from_beta = {"key": "display_name", "operation": "GREATER_THAN_EQUALS", "string_value": f"{prefix}-beta"}
    before_alpha = {"key": "display_name", "operation": "LESS_THAN", "string_value": f"{prefix}-alpha"}
    to_alpha = {"key": "display_name", "operation": "LESS_THAN_EQUALS", "string_value": f"{prefix}-alpha"}
    since_epoch = {
        "key": "created_at",
        "operation": "GREATER_THAN",
        "timestamp_value": "1970-01-01T00:00:00Z",
    }
    before_epoch = {"key": "created_at", "operation": "LESS_THAN", "timestamp_value": "1970-01-01T00:00:01Z"}

    assert _names(kfp, _in_family(prefix), after_beta) == [f"{prefix}-gamma"]
    assert _names(kfp, _in_family(prefix), from_beta) == [f"{prefix}-Beta", f"{prefix}-gamma"]
    assert _names(kfp, _in_family(prefix), before_alpha) == sorted([f"{prefix}-a b", f"{prefix}-a_c"])
    assert _names(kfp, _in_family(prefix), to_alpha) == sorted(
        [f"{prefix}-a b", f"{prefix}-a_c", f"{prefix}-alpha"]
    )
    assert len(_names(kfp, _in_family(prefix), since_epoch)) == 5
    assert _names(kfp, _in_family(prefix), before_epoch) == []


def test_numeric_values_compare_with_numeric_columns(kfp, family):
    prefix, _ = family
    long_value = {"key": "created_at", "operation": "GREATER_THAN", "long_value": "1"}
    int_value = {"key": "last_run_created_at", "operation": "EQUALS", "int_value": 0}

    assert len(_names(kfp, _in_family(prefix), long_value)) == 5
    assert len(_names(kfp, _in_family(prefix), int_value)) == 5


def test_in_matches_any_of_the_values(kfp, family):
    prefix, _ = family
    among = {
        "key": "display_name",
        "operation": "IN",
        "string_values": {"values": [f"{prefix}-alpha", f"{prefix}-GAMMA", "other"]},
    }

    assert _names(kfp, _in_family(prefix), among) == [f"{prefix}-alpha", f"{prefix}-gamma"]


def test_is_substring_is_a_like_without_escaping(kfp, family):
    prefix, _ = family
    underscore_is_a_wildcard = {
        "key": "display_name",
        "operation": "IS_SUBSTRING",
        "string_value": f"{prefix}-a_",
    }

    assert _names(kfp, _in_family(prefix), underscore_is_a_wildcard) == sorted(
        [f"{prefix}-a b", f"{prefix}-a_c", f"{prefix}-alpha"]
    )


def test_camel_case_value_keys_and_numeric_operations_are_accepted(kfp, family):
    prefix, _ = family
    camel = {"key": "display_name", "operation": 1, "stringValue": f"{prefix}-gamma"}
    camel_in = {"key": "display_name", "operation": 8, "stringValues": {"values": [f"{prefix}-alpha"]}}

    assert _names(kfp, camel) == [f"{prefix}-gamma"]
    assert _names(kfp, camel_in) == [f"{prefix}-alpha"]


def test_the_filter_is_unescaped_a_second_time(kfp, family):
    prefix, _ = family
    # The client encodes "+" as %2B; the server decodes the query, then unescapes again: "+" -> " ".
    plus = {"key": "display_name", "operation": "EQUALS", "string_value": f"{prefix}-a+b"}
    assert _names(kfp, plus) == [f"{prefix}-a b"]

    stray_percent = _filter({"key": "display_name", "operation": "EQUALS", "string_value": "100%"})
    assert "failed to parse valid filter" in _list_error(kfp, filter=stray_percent)


def test_unknown_keys_and_mismatched_operations_are_400s(kfp):
    unknown = _filter({"key": "colour", "operation": "EQUALS", "string_value": "red"})
    camel_key = _filter({"key": "displayName", "operation": "EQUALS", "string_value": "x"})
    in_with_scalar = _filter({"key": "display_name", "operation": "IN", "string_value": "x"})
    scalar_with_list = _filter(
        {"key": "display_name", "operation": "EQUALS", "string_values": {"values": ["x"]}}
    )
    substring_of_number = _filter({"key": "display_name", "operation": "IS_SUBSTRING", "int_value": 5})

    assert _list_error(kfp, filter=unknown).endswith(
        'no support for filtering on unrecognized field "colour"'
    )
    assert 'unrecognized field "displayName"' in _list_error(kfp, filter=camel_key)
    assert "cannot use IN operator with scalar type string" in _list_error(kfp, filter=in_with_scalar)
    assert "cannot use scalar operator EQUALS on array type []string" in _list_error(
        kfp, filter=scalar_with_list
    )
    assert "cannot use non string value type" in _list_error(kfp, filter=substring_of_number)
    assert "failed to parse valid filter" in _list_error(kfp, filter="{not json")
    assert "failed to parse valid filter" in _list_error(kfp, filter='{"predicates":[{"bogus":1}]}')


def test_legacy_keys_are_accepted(kfp, family):
    prefix, _ = family
    legacy = {"key": "name", "operation": "EQUALS", "string_value": f"{prefix}-alpha"}

    assert _names(kfp, legacy) == [f"{prefix}-alpha"]


def test_sort_by_a_field_in_either_direction(kfp, family):
    prefix, names = family
    ascending = kfp.experiments.experiment_service_list_experiments(
        filter=_filter(_in_family(prefix)), sort_by="display_name"
    )
    descending = kfp.experiments.experiment_service_list_experiments(
        filter=_filter(_in_family(prefix)), sort_by="display_name DESC"
    )

    expected = sorted(names, key=str.lower)
    assert [e.display_name for e in ascending.experiments] == expected
    assert [e.display_name for e in descending.experiments] == expected[::-1]


def test_bad_sort_fields_and_formats_are_400s(kfp):
    assert 'Invalid sorting field: "colour"' in _list_error(kfp, sort_by="colour")
    assert "Received invalid sort by format" in _list_error(kfp, sort_by="display_name sideways")
    assert "Received invalid sort by format" in _list_error(kfp, sort_by="a b c")


def test_pages_walk_every_match_once_with_the_total_size(kfp, family):
    prefix, names = family
    seen = []
    token = ""
    pages = 0
    while True:
        page = kfp.experiments.experiment_service_list_experiments(
            filter=_filter(_in_family(prefix)) if not token else None, page_size=2, page_token=token or None
        )
        assert page.total_size == 5
        seen += [e.display_name for e in page.experiments]
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert pages == 3
    assert sorted(seen) == sorted(names)


def test_later_pages_follow_a_cursor_and_count_what_matches_when_they_are_read_at_their_own_size(kfp, family):
    """What the operator's bulk poll relies on: a match that sorts above the pages still to come
    does not shift them, yet each later page's total_size counts it; and a later page holds as
    many as its own request asks for."""
    prefix, names = family
    first = kfp.experiments.experiment_service_list_experiments(
        filter=_filter(_in_family(prefix)), sort_by="display_name desc", page_size=2
    )
    kfp.experiments.experiment_service_create_experiment(V2beta1Experiment(display_name=f"{prefix}-zzz"))
    seen = [e.display_name for e in first.experiments]
    totals = [first.total_size]
    token = first.next_page_token
    while token:
        # A token's page takes the size its request asks for.
        page = kfp.experiments.experiment_service_list_experiments(page_size=3, page_token=token)
        seen += [e.display_name for e in page.experiments]
        totals.append(page.total_size)
        token = page.next_page_token

    assert sorted(seen) == sorted(names), "every match as of the first page, once; not the one created after"
    assert totals == [5, 6]


def test_a_token_works_with_the_same_criteria_and_not_with_others(kfp, family):
    prefix, _ = family
    criteria = {"filter": _filter(_in_family(prefix)), "sort_by": "display_name desc"}
    first = kfp.experiments.experiment_service_list_experiments(page_size=2, **criteria)

    same = kfp.experiments.experiment_service_list_experiments(
        page_size=2, page_token=first.next_page_token, **criteria
    )
    assert len(same.experiments) == 2

    other = _filter(_in_family(prefix), {"key": "description", "operation": "EQUALS", "string_value": ""})
    message = _list_error(kfp, page_token=first.next_page_token, filter=other)
    assert "page token does not match the supplied sort by and/or filtering criteria" in message
    message = _list_error(kfp, page_token=first.next_page_token, sort_by="display_name")
    assert "page token does not match" in message


def test_the_token_is_base64_json_and_garbage_is_a_400(kfp, family):
    prefix, _ = family
    first = kfp.experiments.experiment_service_list_experiments(
        filter=_filter(_in_family(prefix)), page_size=1
    )

    cursor = json.loads(base64.b64decode(first.next_page_token))
    assert cursor["SortByFieldName"] == "CreatedAtInSec" and cursor["KeyFieldName"] == "UUID"
    assert _list_error(kfp, page_token="not-base64!") == (
        "Failed to create list options: InvalidInputError: Invalid page token: "
        "illegal base64 data at input byte 3"
    )


def test_page_size_defaults_to_20_caps_at_200_and_rejects_negatives(emulator, kfp):
    prefix = unique("many")
    for index in range(205):
        raw_call(
            emulator.url, "POST", "/apis/v2beta1/experiments", body={"display_name": f"{prefix}-{index:03d}"}
        )
    scoped = _filter(_in_family(prefix))

    default = kfp.experiments.experiment_service_list_experiments(filter=scoped)
    capped = kfp.experiments.experiment_service_list_experiments(filter=scoped, page_size=1000)

    assert (len(default.experiments), default.total_size) == (20, 205)
    assert (len(capped.experiments), capped.total_size) == (200, 205)
    assert capped.next_page_token
    assert "The page size should be greater than 0. Got -1" in _list_error(kfp, page_size=-1)


def test_pipelines_filter_on_tags_and_versions_on_name(kfp, penguin):
    from kfp_server_api import V2beta1Pipeline

    team = unique("team")
    tagged = kfp.pipelines.pipeline_service_create_pipeline(
        V2beta1Pipeline(name=unique("tagged"), tags={"team": team})
    )
    by_tag = _filter({"key": "tags.team", "operation": "EQUALS", "string_value": team})
    versions = _filter({"key": "name", "operation": "EQUALS", "string_value": penguin.name})

    assert [
        p.pipeline_id for p in kfp.pipelines.pipeline_service_list_pipelines(filter=by_tag).pipelines
    ] == [tagged.pipeline_id]
    listed = kfp.pipelines.pipeline_service_list_pipeline_versions(penguin.pipeline_id, filter=versions)
    assert [v.name for v in listed.pipeline_versions] == [penguin.name]


def test_runs_filter_on_state_with_v2_names(kfp, penguin, ctl):
    from kfp_devstack.emulator import Scenario

    ctl.script_pipeline(penguin.name, Scenario(hold_pending=True))
    run = kfp.create_run(penguin.pipeline_id, display_name=unique("held"))
    kfp.wait_until_reported(run.run_id)
    active = ["RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING"]
    pending = _filter(
        {"key": "run_id", "operation": "EQUALS", "string_value": run.run_id},
        {"key": "state", "operation": "IN", "string_values": {"values": active}},
    )
    succeeded = _filter(
        {"key": "run_id", "operation": "EQUALS", "string_value": run.run_id},
        {"key": "state", "operation": "EQUALS", "string_value": "SUCCEEDED"},
    )

    assert [r.run_id for r in kfp.runs.run_service_list_runs(filter=pending).runs] == [run.run_id]
    assert kfp.runs.run_service_list_runs(filter=succeeded).runs is None
