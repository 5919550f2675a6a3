"""The Run cache's indexes: which RunConfigurations a Run references or belongs to."""

from __future__ import annotations

from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.indexes import owner_index, reference_index
from tests.support.objects import SEED_SPEC, run


def test_a_reference_is_indexed_in_the_namespace_it_names() -> None:
    spec = {
        **SEED_SPEC,
        "runtimeParameters": [
            {"name": "A", "valueFrom": {"runConfigurationRef": {"name": "gen", "outputArtifact": "x"}}},
            {"name": "B", "valueFrom": {"runConfigurationRef": {"name": "other/up", "outputArtifact": "y"}}},
        ],
    }

    assert sorted(reference_index(run(spec=spec))) == ["ns/gen", "other/up"]


def test_the_owner_is_in_the_runs_namespace() -> None:
    assert owner_index(run(labels={RUN_CONFIGURATION_LABEL: "gen"})) == ["ns/gen"]
    assert owner_index(run()) == []
