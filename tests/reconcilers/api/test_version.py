"""``status.version`` and the RunConfiguration's run-spec version, computed as the reference does.

The expected bytes follow the reference's ObjectHasher (SHA-1; a zero byte after every string
field and after every list; lists sorted; artifact paths rendered ``COMPONENT:OUTPUT:INDEX[FILTER]``
with the index always written), so the same Run shows the same version in both operators.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from reconcilers.api.run import RunSpec, canonical_artifact_path, run_version, spec_version

SPEC: dict[str, Any] = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [
        {"name": "TRAINING_RUNS", "value": "100"},
        {
            "name": "EXAMPLES",
            "valueFrom": {"runConfigurationRef": {"name": "gen", "outputArtifact": "examples"}},
        },
    ],
    "artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model[pushed == 1]"}],
}

# The bytes the reference hashes for SPEC: parameters sorted by name (EXAMPLES first, with an
# empty value before its reference), the artifact path with its index written out.
SPEC_BYTES = (
    b"penguin-pipeline:v1-abcdef\0"
    b"penguin-experiment\0"
    b"EXAMPLES\0" b"\0" b"gen\0" b"examples\0"
    b"TRAINING_RUNS\0" b"100\0"
    b"\0"
    b"serving-model\0" b"Pusher:pushed_model:0[pushed == 1]\0"
    b"\0"
)  # fmt: skip


def sha1_prefix(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:6]


def test_the_run_spec_version_hashes_what_the_reference_hashes() -> None:
    assert spec_version(RunSpec.from_dict(SPEC)) == sha1_prefix(SPEC_BYTES)


def test_the_run_version_adds_the_observed_pipeline_version() -> None:
    assert run_version(RunSpec.from_dict(SPEC), "v1-abcdef") == sha1_prefix(SPEC_BYTES + b"v1-abcdef\0")


def test_an_empty_run_has_a_six_character_version() -> None:
    assert re.fullmatch(r"[a-z0-9]{6}", run_version(RunSpec.from_dict({}), ""))
    assert run_version(RunSpec.from_dict({}), "") == sha1_prefix(b"\0\0\0\0\0")


def test_the_order_of_parameters_and_artifacts_does_not_matter() -> None:
    shuffled = {
        **SPEC,
        "runtimeParameters": list(reversed(SPEC["runtimeParameters"])),
        "artifacts": [{"name": "b", "path": "T:o"}, {"name": "a", "path": "T:o"}],
    }
    ordered = {**shuffled, "artifacts": list(reversed(shuffled["artifacts"]))}

    assert spec_version(RunSpec.from_dict(shuffled)) == spec_version(RunSpec.from_dict(ordered))


@pytest.mark.parametrize(
    "change",
    [
        {"pipeline": "penguin-pipeline:v2"},
        {"experimentName": "other"},
        {"runtimeParameters": [{"name": "TRAINING_RUNS", "value": "101"}]},
        {"runtimeParameters": [{"name": "OTHER", "value": "100"}]},
        {"artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model:1[pushed == 1]"}]},
        {"artifacts": [{"name": "model", "path": "Pusher:pushed_model[pushed == 1]"}]},
    ],
)
def test_every_field_changes_the_version(change: dict[str, Any]) -> None:
    assert spec_version(RunSpec.from_dict({**SPEC, **change})) != spec_version(RunSpec.from_dict(SPEC))


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("Pusher:pushed_model", "Pusher:pushed_model:0"),
        ("Pusher:pushed_model:", "Pusher:pushed_model:0"),
        ("Pusher:pushed_model:007", "Pusher:pushed_model:7"),
        ("Pusher:pushed_model[pushed == 1]", "Pusher:pushed_model:0[pushed == 1]"),
        ("Pusher:pushed_model:2[a  ==  b]", "Pusher:pushed_model:2[a  ==  b]"),
    ],
)
def test_artifact_paths_are_hashed_with_the_index_written_out(path: str, canonical: str) -> None:
    assert canonical_artifact_path(path) == canonical
