"""The user's example end to end, by an operator with administrator rights."""

from __future__ import annotations

from tests.lifecycle.harness import World, on_both_backends
from tests.lifecycle.seed import run_seed_scenario


@on_both_backends
def test_the_seed_example_end_to_end(world: World) -> None:
    run_seed_scenario(world, world.start_operator)
