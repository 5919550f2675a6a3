"""Generates the examples the penguin pipeline trains on.

One task, key ``example-gen`` (from the component name) with display name
``ExampleGen``, producing the ``examples`` dataset artifact.

Compile with ``hack/compile-pipelines.sh``; the YAML beside this file is the result.
"""

# No `from __future__ import annotations`: the KFP SDK reads the annotations as types.

import sys

from kfp import compiler, dsl
from kfp.dsl import Dataset, Output


@dsl.component(base_image="python:3.11-slim")
def example_gen(source_uri: str, examples: Output[Dataset]) -> None:
    """Copies the raw penguin data into an examples dataset."""
    from pathlib import Path

    examples.metadata["source"] = source_uri
    Path(examples.path).write_text(source_uri)


@dsl.pipeline(name="example-generator", description="Produces the penguin examples.")
def example_generator(SOURCE_URI: str = "gs://penguin-data/raw") -> None:
    example_gen(source_uri=SOURCE_URI).set_display_name("ExampleGen")


if __name__ == "__main__":
    compiler.Compiler().compile(example_generator, package_path=sys.argv[1])
