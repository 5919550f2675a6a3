from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcilers.artifacts.filter import InvalidArtifactFilter, parse_filter
from reconcilers.artifacts.path import ArtifactPath, InvalidArtifactPath, parse_artifact_path

# The Run CRD's pattern as the API server (Go regexp: \d is ASCII, $ is the end of the text)
# applies it.
CRD_PATTERN = re.compile(r"([^\[\]:]+):([^\[\]:]+)(?::([0-9]*))?(?:\[([^\[\]:]+)\])?")


@pytest.mark.parametrize(
    ("text", "component", "output", "index", "filter_text"),
    [
        ("Trainer:model", "Trainer", "model", 0, None),
        ("Trainer:model:", "Trainer", "model", 0, None),
        ("Trainer:model:0", "Trainer", "model", 0, None),
        ("Trainer:model:3", "Trainer", "model", 3, None),
        ("Trainer:model:007", "Trainer", "model", 7, None),
        ("Pusher:pushed_model[pushed == 1]", "Pusher", "pushed_model", 0, "pushed == 1"),
        ("Pusher:pushed_model:[pushed == 1]", "Pusher", "pushed_model", 0, "pushed == 1"),
        ("Pusher:pushed_model:2[pushed == 1]", "Pusher", "pushed_model", 2, "pushed == 1"),
        ("my comp:out-put.v1", "my comp", "out-put.v1", 0, None),
        ("C:O:9223372036854775807", "C", "O", 2**63 - 1, None),
    ],
)
def test_valid_paths_parse_into_their_parts(
    text: str, component: str, output: str, index: int, filter_text: str | None
) -> None:
    path = parse_artifact_path(text)
    assert path.component == component
    assert path.output == output
    assert path.index == index
    assert path.filter == (None if filter_text is None else parse_filter(filter_text))


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("Trainer:model", "Trainer:model:0"),
        ("Trainer:model:", "Trainer:model:0"),
        ("Trainer:model:007", "Trainer:model:7"),
        ("Pusher:pushed_model[pushed==1]", "Pusher:pushed_model:0[pushed == 1]"),
        ("Pusher:pushed_model:1[ (a == 1)  or b is empty ]", "Pusher:pushed_model:1[a == 1 or b is empty]"),
    ],
)
def test_paths_render_with_an_explicit_index(text: str, rendered: str) -> None:
    assert str(parse_artifact_path(text)) == rendered
    assert parse_artifact_path(rendered) == parse_artifact_path(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty; expected COMPONENT:OUTPUT[:INDEX][[FILTER]]"),
        ("Trainer", "missing ':' and the output name"),
        ("Trainer[pushed == 1]", "missing ':' and the output name"),
        (":model", "the component name before the first ':' is empty"),
        ("Trainer:", "the output name after the first ':' is empty"),
        ("Trainer::0", "the output name after the first ':' is empty"),
        ("Trainer:model:x", "the index 'x' is not a whole number of 0 or more"),
        ("Trainer:model:-1", "the index '-1' is not a whole number of 0 or more"),
        ("Trainer:model:1.5", "the index '1.5' is not a whole number of 0 or more"),
        ("Trainer:model:\u0663", "is not a whole number of 0 or more"),
        ("Trainer:model:0:1", "too many ':'"),
        ("Trainer:model:9223372036854775808", "the index 9223372036854775808 is too large"),
        ("Trainer:model:" + "9" * 5000, "is too large"),
        ("Trainer:model[pushed == 1", "the filter has no closing ']'"),
        ("Trainer:model[pushed == 1]x", "unexpected text after the filter's closing ']'"),
        ("Trainer:model[]", "the filter between '[' and ']' is empty"),
        ("Trainer:model]", "']' without an opening '['"),
        ("Trainer:mo]del[x == 1]", "']' without an opening '['"),
        ("Trainer:model[a[0] == 1]", "a filter cannot contain ':', '[' or ']'"),
        ("Trainer:model[uri == gs://x]", "a filter cannot contain ':', '[' or ']'"),
        ("Trainer:model[x == 1][y == 2]", "a filter cannot contain ':', '[' or ']'"),
    ],
)
def test_invalid_paths_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidArtifactPath) as caught:
        parse_artifact_path(text)
    assert reason in str(caught.value)
    assert str(caught.value).startswith("invalid artifact path")
    assert caught.value.filter_error is None


def test_an_invalid_filter_in_a_valid_path_reports_the_filter_error() -> None:
    with pytest.raises(InvalidArtifactPath) as caught:
        parse_artifact_path("Pusher:pushed_model:0[pushed = 1]")
    assert isinstance(caught.value.filter_error, InvalidArtifactFilter)
    assert caught.value.filter_error.position == 7
    assert str(caught.value) == (
        'invalid filter in artifact path "Pusher:pushed_model:0[pushed = 1]": '
        "unexpected character '=': use '==' to compare (at column 30)"
    )
    assert "Pusher:pushed_model:0[pushed = 1]"[29] == "="


def test_long_paths_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArtifactPath) as caught:
        parse_artifact_path("x" * 10_000)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("component", "output", "index"),
    [("", "o", 0), ("c", "", 0), ("c:d", "o", 0), ("c", "o[", 0), ("c", "o", -1)],
)
def test_paths_built_by_hand_are_checked_too(component: str, output: str, index: int) -> None:
    with pytest.raises(InvalidArtifactPath):
        ArtifactPath(component, output, index)


@settings(deadline=timedelta(seconds=1), max_examples=500)
@given(st.text(alphabet="ab:[]0 1=x-\u0663", max_size=30))
def test_exactly_the_paths_the_crd_accepts_parse_when_their_filter_is_valid(text: str) -> None:
    crd_match = CRD_PATTERN.fullmatch(text)
    try:
        path = parse_artifact_path(text)
    except InvalidArtifactPath as error:
        if crd_match is not None:
            assert error.filter_error is not None or "too large" in str(error)
    else:
        assert crd_match is not None
        assert parse_artifact_path(str(path)) == path


NAMES = st.text(
    alphabet=st.characters(exclude_characters="[]:", exclude_categories=["Cs"]), min_size=1, max_size=8
)


@settings(deadline=timedelta(seconds=1))
@given(
    NAMES,
    NAMES,
    st.integers(min_value=0, max_value=2**63 - 1),
    st.sampled_from([None, "pushed == 1", 'a.b != "x:y"', "not (t is empty or v matches `[a-z]`)"]),
)
def test_paths_render_and_parse_back_to_the_same_value(
    component: str, output: str, index: int, filter_text: str | None
) -> None:
    artifact_filter = None if filter_text is None else parse_filter(filter_text)
    path = ArtifactPath(component, output, index, artifact_filter)
    rendered = str(path)
    assert CRD_PATTERN.fullmatch(rendered)
    assert parse_artifact_path(rendered) == path


def test_a_path_is_parsed_once_and_an_invalid_one_every_time() -> None:
    text = "Pusher:pushed_model:0[pushed == 1]"
    assert parse_artifact_path(text) is parse_artifact_path(text)
    for _ in range(2):
        with pytest.raises(InvalidArtifactPath):
            parse_artifact_path("Pusher:pushed_model[pushed ==]")
