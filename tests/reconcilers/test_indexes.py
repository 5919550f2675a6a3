"""The Run cache's indexes: which RunConfigurations a Run references or belongs to."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controller.store import namespaced_index_value
from reconcilers.api import RUN_CONFIGURATION_LABEL
from reconcilers.api.run import RunView, reference_target
from reconcilers.indexes import owner_index, reference_index, run_experiment_index, run_pipeline_index
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


_names = st.sampled_from(["gen", "up", "other/up", "x/gen"])
_parameters = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["A", "B", "C"])},
        optional={
            "value": st.text(max_size=3),
            "valueFrom": st.fixed_dictionaries(
                {
                    "runConfigurationRef": st.fixed_dictionaries(
                        {"name": _names, "outputArtifact": st.just("o")}
                    )
                }
            ),
        },
    ),
    max_size=4,
)
_specs = st.fixed_dictionaries(
    {"pipeline": st.sampled_from(["penguin", "penguin:v1", "other:v2"])},
    optional={"experimentName": st.sampled_from(["", "exp"]), "runtimeParameters": _parameters},
)


@given(_specs)
def test_the_indexes_read_what_the_parsed_spec_says(spec: dict[str, Any]) -> None:
    """The index functions read the raw spec (they run on every listed object); they must agree
    with the parsed spec the reconcilers use."""
    obj = run(spec=spec)
    parsed = RunView(obj).spec
    assert sorted(reference_index(obj)) == sorted(
        namespaced_index_value(*reference_target(r, "ns")) for r in parsed.referenced_run_configurations()
    )
    assert run_pipeline_index(obj) == [namespaced_index_value("ns", parsed.pipeline.name)]
    assert run_experiment_index(obj) == (
        [namespaced_index_value("ns", parsed.experiment_name)] if parsed.experiment_name else []
    )
