"""A pipeline whose root parameters cover every KFP parameter type.

Used to check how the API server validates ``runtime_config.parameters``:
``count`` (NUMBER_INTEGER), ``ratio`` (NUMBER_DOUBLE), ``label`` (STRING),
``enabled`` (BOOLEAN), ``columns`` (LIST) and ``options`` (STRUCT) are required;
``suffix`` has a default and ``note`` is optional without one.
One task, key ``echo`` (display name ``echo``), producing the ``report`` artifact.

Compile with ``hack/compile-pipelines.sh``; the YAML beside this file is the result.
"""

# No `from __future__ import annotations`: the KFP SDK reads the annotations as types.

import sys
from typing import Optional

from kfp import compiler, dsl
from kfp.dsl import Artifact, Output


@dsl.component(base_image="python:3.11-slim")
def echo(
    count: int,
    ratio: float,
    label: str,
    enabled: bool,
    columns: list,
    options: dict,
    suffix: str,
    report: Output[Artifact],
    note: Optional[str] = None,  # noqa: UP045 - the KFP SDK does not understand `str | None`
) -> None:
    """Writes its inputs into a report."""
    from pathlib import Path

    Path(report.path).write_text(f"{count} {ratio} {label}{suffix} {enabled} {columns} {options} {note}")


@dsl.pipeline(name="typed-parameters", description="Every parameter type, for validation.")
def typed_parameters(
    count: int,
    ratio: float,
    label: str,
    enabled: bool,
    columns: list,
    options: dict,
    suffix: str = "-x",
    note: Optional[str] = None,  # noqa: UP045 - the KFP SDK does not understand `str | None`
) -> None:
    echo(
        count=count,
        ratio=ratio,
        label=label,
        enabled=enabled,
        columns=columns,
        options=options,
        suffix=suffix,
        note=note,
    )


if __name__ == "__main__":
    compiler.Compiler().compile(typed_parameters, package_path=sys.argv[1])
