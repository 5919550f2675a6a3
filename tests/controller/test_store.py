"""The store's indices follow every change of the objects they index."""

from __future__ import annotations

from typing import Any

from controller.keys import ObjectKey
from controller.store import Store


def obj(name: str, *colours: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "colours": list(colours)}


def colours(o: Any) -> list[str]:
    return list(o["colours"])


def index(store: Store) -> dict[str, list[str]]:
    return {
        value: sorted(k.name for k in store.index_keys("colour", value))
        for value in store.index_values("colour")
    }


def test_indices_follow_adds_updates_deletes_and_replaces() -> None:
    store = Store({"colour": colours})
    store.upsert(obj("a", "red", "red", "blue"))
    store.upsert(obj("b", "red"))
    assert index(store) == {"red": ["a", "b"], "blue": ["a"]}

    store.upsert(obj("a", "green"))
    assert index(store) == {"red": ["b"], "green": ["a"]}

    store.upsert(obj("a", "green"))
    assert index(store) == {"red": ["b"], "green": ["a"]}, "an unchanged object keeps its entries"

    store.delete(ObjectKey("ns", "b"))
    assert index(store) == {"green": ["a"]}

    store.replace([obj("a", "blue"), obj("c", "blue", "red")])
    assert index(store) == {"blue": ["a", "c"], "red": ["c"]}

    store.replace([])
    assert index(store) == {}


def test_an_indexer_added_later_indexes_what_is_cached_and_every_later_change() -> None:
    store = Store({"colour": colours})
    store.upsert(obj("a", "red"))
    store.add_indexer("first", lambda o: list(o["colours"][:1]))
    assert store.index_keys("first", "red") == [ObjectKey("ns", "a")]

    store.upsert(obj("a", "blue", "red"))
    assert store.index_keys("first", "red") == []
    assert store.index_keys("first", "blue") == [ObjectKey("ns", "a")]
    assert index(store) == {"blue": ["a"], "red": ["a"]}


def test_any_iterable_of_values_indexes_and_their_order_does_not_matter() -> None:
    store = Store({"colour": lambda o: (c for c in o["colours"])})
    store.upsert(obj("a", "red", "blue"))
    store.upsert(obj("a", "blue", "red"))
    assert index(store) == {"blue": ["a"], "red": ["a"]}
    store.upsert(obj("a"))
    assert index(store) == {}


def versioned(name: str, rv: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}}


def test_a_replace_after_paged_applies_reports_only_what_the_pages_did_not() -> None:
    store = Store()
    for o in (
        versioned("gone", "1"),
        versioned("kept", "1"),
        versioned("changed", "1"),
        versioned("x", "1", "other"),
    ):
        store.upsert(o)
    first_page = [versioned("kept", "1"), versioned("new-in-page", "2")]
    assert [o["metadata"]["name"] for o in store.apply(first_page).added] == ["new-in-page"]
    late = [versioned("changed", "3"), versioned("late", "4")]  # listed, never applied

    result = store.replace([*first_page, *late], namespace="ns")

    assert [o["metadata"]["name"] for o in result.deleted] == ["gone"]
    assert [
        (old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])
        for old, new in result.updated
    ] == [("1", "3")]
    assert [o["metadata"]["name"] for o in result.added] == ["late"]
    assert sorted(k.name for k in store.list_keys() if k.namespace == "ns") == [
        "changed",
        "kept",
        "late",
        "new-in-page",
    ]
    assert store.get(ObjectKey("ns", "kept")) is first_page[0], "the applied dict stays"
    assert store.get(ObjectKey("other", "x")) is not None, "another namespace is out of scope"
