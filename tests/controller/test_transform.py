"""What the informer cache keeps of an object, that informers apply it to everything they get, and
that decoding straight into that form gives the same objects.

That the reconcilers find in the cache all they read is shown by their own tests: their fixtures
(``tests/reconcilers/fakes.py``) put every object through the same transform before caching it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import jsoncodec
from controller.clock import FakeClock
from controller.informer import Informer
from controller.keys import ObjectKey
from controller.resource import CONFIGMAPS
from controller.transform import KEPT_METADATA, LAST_APPLIED_ANNOTATION, CacheDecoder, strip_for_cache
from tests.controller.test_reflector import (
    Recorder,
    ScriptedListerWatcher,
    event,
    page,
    reflector_of,
    run_until_script_ends,
)

MANAGED_FIELDS = [
    {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {".": {}, "f:providerId": {}}},
        "manager": "kfp-operator",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-12-05T16:47:12Z",
    }
]


def api_object(name: str = "run-1", rv: str = "7") -> dict[str, Any]:
    """An object as the API server serves it: every metadata field, used or not."""
    return {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "kind": "Run",
        "metadata": {
            "name": name,
            "generateName": "run-",
            "namespace": "team-a",
            "uid": "376307b4-31ff-477c-bf6a-9e0966b76810",
            "resourceVersion": rv,
            "generation": 2,
            "creationTimestamp": "2026-12-05T16:47:08Z",
            "deletionTimestamp": "2026-12-05T16:50:00Z",
            "deletionGracePeriodSeconds": 0,
            "selfLink": f"/apis/pipelines.kubeflow.org/v1alpha5/namespaces/team-a/runs/{name}",
            "labels": {"pipelines.kubeflow.org/runconfiguration": "rc"},
            "annotations": {
                "pipelines.kubeflow.org/ttl-after-completion": "1h",
                LAST_APPLIED_ANNOTATION: '{"apiVersion":"pipelines.kubeflow.org/v1alpha5","kind":"Run"}',
            },
            "finalizers": ["finalizer.pipelines.kubeflow.org"],
            "ownerReferences": [
                {"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "RunConfiguration", "name": "rc"}
            ],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {"pipeline": "penguin:v1", "runtimeParameters": [{"name": "A", "value": "1"}]},
        "status": {
            "providerId": "kfp:7b0fb9b1",
            "conditions": [{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "m"}],
            "completionEvent": {"deliveredTo": ["nats"]},
        },
    }


def test_the_cache_keeps_spec_status_and_the_metadata_reconcilers_read() -> None:
    original = api_object()
    cached = strip_for_cache(copy.deepcopy(original))

    expected_metadata = {k: v for k, v in original["metadata"].items() if k in KEPT_METADATA}
    expected_metadata["annotations"] = {"pipelines.kubeflow.org/ttl-after-completion": "1h"}
    assert cached == {**original, "metadata": expected_metadata}
    assert set(cached["metadata"]) == set(KEPT_METADATA), "every kept field of a full object is there"
    for dropped in ("managedFields", "generateName", "selfLink", "deletionGracePeriodSeconds"):
        assert dropped not in cached["metadata"]


def test_an_object_without_optional_metadata_gets_none_added() -> None:
    cached = strip_for_cache({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "v"}})
    assert cached == {"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "v"}}


def test_recurring_short_strings_are_stored_once_across_objects() -> None:
    one = strip_for_cache(jsoncodec.loads(json.dumps(api_object("run-1"))))
    two = strip_for_cache(jsoncodec.loads(json.dumps(api_object("run-2"))))

    def condition_reason(obj: dict[str, Any]) -> str:
        reason: str = obj["status"]["conditions"][0]["reason"]
        return reason

    assert condition_reason(one) is condition_reason(two)
    assert (
        one["status"]["completionEvent"]["deliveredTo"][0]
        is two["status"]["completionEvent"]["deliveredTo"][0]
    )
    assert one["metadata"]["namespace"] is two["metadata"]["namespace"]
    # The decoder shares the keys of separately decoded documents.
    assert next(iter(one["status"])) is next(iter(two["status"]))


def test_the_decoder_falls_back_for_what_strict_json_refuses() -> None:
    decoded = jsoncodec.loads(b'{"value": NaN, "count": 3}')
    assert decoded["count"] == 3 and decoded["value"] != decoded["value"]


def test_an_informer_with_a_transform_caches_and_hands_out_only_transformed_objects() -> None:
    lw = ScriptedListerWatcher()
    lw.lists.append(page([api_object("listed", "5")], "10"))
    lw.watches.append(
        [event("ADDED", api_object("watched", "11")), event("MODIFIED", api_object("listed", "12"))]
    )
    informer = Informer(CONFIGMAPS, lambda ns: lw, clock=FakeClock(), transform=strip_for_cache)
    seen: list[dict[str, Any]] = []

    class Handler(Recorder):
        def on_add(self, obj: dict[str, Any]) -> None:
            seen.append(obj)

        def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
            seen.extend([old, new])

    informer.add_event_handler(Handler())
    run_until_script_ends(reflector_of(informer))

    assert len(seen) == 4
    cached = [informer.get(ObjectKey("team-a", name)) for name in ("listed", "watched")]
    for obj in [*seen, *cached]:
        assert obj is not None
        assert "managedFields" not in obj["metadata"] and "generateName" not in obj["metadata"]
        assert LAST_APPLIED_ANNOTATION not in obj["metadata"]["annotations"]


def test_request_bodies_are_encoded_by_orjson_and_what_it_refuses_by_the_standard_library() -> None:
    body = {"metadata": {"name": "ü"}, "status": {"count": 2, "ratio": 0.5, "gone": None}}
    assert json.loads(jsoncodec.dumps(body)) == body
    # Non-string keys: orjson refuses them, json turns them into strings.
    assert json.loads(jsoncodec.dumps({1: True})) == {"1": True}
    with pytest.raises(TypeError):
        jsoncodec.dumps({"not json": object()})


def test_a_custom_resource_list_gives_its_metadata_without_decoding_its_items() -> None:
    # The API server's layout of a custom resource list: keys in order, metadata last.
    page = {
        "apiVersion": "pipelines.kubeflow.org/v1alpha5",
        "items": [{"metadata": {"name": "r", "uid": "u"}, "spec": {"note": '"metadata":{"x":1}}'}}],
        "kind": "RunList",
        "metadata": {"continue": "token", "remainingItemCount": 3, "resourceVersion": "7"},
    }
    document = jsoncodec.ListDocument(json.dumps(page, separators=(",", ":")).encode() + b"\n")
    assert document["metadata"] == page["metadata"]
    assert document._decoded is None, "reading the metadata decoded nothing else"
    assert dict(document) == page
    assert document.get("metadata") == page["metadata"]


@pytest.mark.parametrize(
    "page",
    [
        # Built-in types: metadata before items, the last "metadata" is an item's.
        {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
         "items": [{"metadata": {"name": "c", "uid": "u"}}]},
        {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": []},
        {"items": [{"metadata": {"name": "last", "uid": "u"}}]},
        {"items": []},
    ],
)  # fmt: skip
def test_a_list_laid_out_otherwise_is_decoded_whole(page: dict[str, Any]) -> None:
    document = jsoncodec.ListDocument(json.dumps(page).encode())
    assert document.get("metadata") == page.get("metadata")
    assert dict(document) == page


# ---- decoding straight into the cached form ---------------------------------------------------

RUN_DECODER = CacheDecoder(("spec", "status"))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def encoded(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@settings(max_examples=150, deadline=None)
@given(
    spec=json_values,
    status=json_values,
    dropped_metadata=st.sets(st.sampled_from(sorted(api_object()["metadata"]))),
    extra_metadata=st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)
def test_a_decoded_object_is_what_the_transform_keeps_of_it(
    spec: Any, status: Any, dropped_metadata: set[str], extra_metadata: dict[str, Any]
) -> None:
    obj = api_object()
    obj["spec"], obj["status"] = spec, status
    obj["metadata"] = {**extra_metadata, **obj["metadata"]}
    for key in dropped_metadata:
        obj["metadata"].pop(key, None)
    expected = strip_for_cache(jsoncodec.loads(encoded(obj)))

    assert RUN_DECODER.event(encoded({"type": "MODIFIED", "object": obj})) == {
        "type": "MODIFIED",
        "object": expected,
    }
    listed = RUN_DECODER.page(
        encoded({"apiVersion": "v", "items": [obj, obj], "kind": "RunList", "metadata": {}})
    )
    assert listed["items"] == [expected, expected]


def test_a_decoder_keeps_only_the_declared_top_level_fields() -> None:
    obj = {**api_object(), "data": {"key": "value"}}
    decoded = RUN_DECODER.event(encoded({"type": "ADDED", "object": obj}))["object"]
    assert set(decoded) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "managedFields" not in decoded["metadata"]
    assert LAST_APPLIED_ANNOTATION not in decoded["metadata"]["annotations"]
    assert CacheDecoder(("data",)).event(encoded({"type": "ADDED", "object": obj}))["object"]["data"] == {
        "key": "value"
    }


def test_a_watch_error_keeps_its_status_whole_and_a_bookmark_its_resource_version() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
              "message": "too old resource version: 5 (9)", "metadata": {}}  # fmt: skip
    assert RUN_DECODER.event(encoded({"type": "ERROR", "object": status})) == {
        "type": "ERROR",
        "object": status,
    }
    bookmark = {"kind": "Run", "apiVersion": "pipelines.kubeflow.org/v1alpha5",
                "metadata": {"resourceVersion": "12", "creationTimestamp": None,
                             "annotations": {"k8s.io/initial-events-end": "true"}}}  # fmt: skip
    assert RUN_DECODER.event(encoded({"type": "BOOKMARK", "object": bookmark}))["object"] == bookmark


def test_decoded_objects_share_their_short_strings_and_keys() -> None:
    one, two = (
        RUN_DECODER.event(encoded({"type": "ADDED", "object": api_object(name)}))["object"]
        for name in ("run-1", "run-2")
    )
    assert one["status"]["conditions"][0]["reason"] is two["status"]["conditions"][0]["reason"]
    assert one["metadata"]["namespace"] is two["metadata"]["namespace"]
    assert next(iter(one["status"])) is next(iter(two["status"]))


def test_what_the_fast_decoder_cannot_parse_is_decoded_the_generic_way() -> None:
    # NaN is not strict JSON: the standard library decodes it, and the transform still applies.
    obj = encoded(api_object()).replace(b'"generation":2', b'"generation":NaN')
    decoded = RUN_DECODER.event(b'{"type":"ADDED","object":' + obj + b"}")["object"]
    assert "managedFields" not in decoded["metadata"] and decoded["spec"] == api_object()["spec"]
    page = RUN_DECODER.page(b'{"items":[' + obj + b'],"metadata":{"resourceVersion":"3"}}')
    assert page["items"] == [decoded] and page["metadata"] == {"resourceVersion": "3"}
    error = RUN_DECODER.event(b'{"type":"ERROR","object":{"code":410,"ratio":NaN}}')
    assert error["object"]["code"] == 410
