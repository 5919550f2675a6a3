"""The example RunConfigurations users read are the ones the local stack creates."""

from __future__ import annotations

import yaml

from kfp_devstack.examples import (
    PROJECT_ROOT,
    example_generator_run_configuration,
    penguin_run_configuration,
)


def test_the_example_manifests_are_what_kfp_devstack_creates() -> None:
    documents = list(yaml.safe_load_all((PROJECT_ROOT / "examples" / "runconfigurations.yaml").read_text()))
    created = [example_generator_run_configuration("ns"), penguin_run_configuration("ns")]
    for obj in created:
        del obj["metadata"]["namespace"]

    assert documents == created
