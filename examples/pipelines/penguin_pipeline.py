"""The penguin training pipeline in the shape the Run resource's documentation uses.

Root parameters ``TRAINING_RUNS`` (integer) and ``EXAMPLES`` (the URI of an examples
artifact, usually taken from the example-generator pipeline's ``examples`` output).
The KFP compiler derives task keys from component names (``trainer``, ``evaluator``,
``pusher``); ``set_display_name`` gives the TFX-style names (``Trainer``, ``Evaluator``,
``Pusher``) that end up as the executions' ``display_name`` in ML Metadata.

Compile with ``hack/compile-pipelines.sh``; the YAML beside this file is the result.
"""

# No `from __future__ import annotations`: the KFP SDK reads the annotations as types.

import sys

from kfp import compiler, dsl
from kfp.dsl import Artifact, Input, Model, Output


@dsl.component(base_image="python:3.11-slim")
def trainer(training_runs: int, examples_uri: str, model: Output[Model]) -> None:
    """Trains a model on the examples for ``training_runs`` steps."""
    from pathlib import Path

    model.metadata["training_runs"] = training_runs
    model.metadata["examples"] = examples_uri
    Path(model.path).write_text("model")


@dsl.component(base_image="python:3.11-slim")
def evaluator(model: Input[Model], blessing: Output[Artifact]) -> None:
    """Blesses the model when it is good enough."""
    from pathlib import Path

    blessing.metadata["blessed"] = True
    Path(blessing.path).write_text(model.uri)


@dsl.component(base_image="python:3.11-slim")
def pusher(model: Input[Model], blessing: Input[Artifact], pushed_model: Output[Model]) -> None:
    """Pushes a blessed model to serving and records whether it did."""
    from pathlib import Path

    pushed_model.metadata["pushed"] = bool(blessing.metadata.get("blessed"))
    pushed_model.metadata["pushed_destination"] = "serving"
    Path(pushed_model.path).write_text(model.uri)


@dsl.pipeline(name="penguin-pipeline", description="Trains, evaluates and pushes a penguin classifier.")
def penguin_pipeline(TRAINING_RUNS: int, EXAMPLES: str) -> None:
    training = trainer(training_runs=TRAINING_RUNS, examples_uri=EXAMPLES).set_display_name("Trainer")
    evaluation = evaluator(model=training.outputs["model"]).set_display_name("Evaluator")
    pusher(
        model=training.outputs["model"],
        blessing=evaluation.outputs["blessing"],
    ).set_display_name("Pusher")


if __name__ == "__main__":
    compiler.Compiler().compile(penguin_pipeline, package_path=sys.argv[1])
