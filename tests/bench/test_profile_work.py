"""The profile's work patterns name functions the operator process has, so that a rename in the
code cannot quietly move a share of the samples to "other"."""

from __future__ import annotations

import importlib
import inspect
import sys

from bench.profile import WORK


def classes_loaded_by_the_operator() -> dict[str, list[type]]:
    # What the running operator uses: the entry point, and the composition root it imports once
    # the Runs' list has started (so it is not yet among sys.modules when this test runs alone).
    for module in ("kfp_operator.__main__", "kfp_operator.wiring"):
        importlib.import_module(module)
    found: dict[str, list[type]] = {}
    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if inspect.isclass(value):
                found.setdefault(name, []).append(value)
    return found


def test_every_work_pattern_names_a_class_or_method_of_the_operator_process() -> None:
    classes = classes_loaded_by_the_operator()
    missing = []
    for work, pattern in WORK:
        class_name, _, method = pattern.partition(".")
        candidates = classes.get(class_name, [])
        if not any(not method or callable(getattr(cls, method, None)) for cls in candidates):
            missing.append(f"{work}: {pattern}")
    assert missing == []
