"""What a Pipeline's spec asks for: the version and where its compiled spec comes from (pure).

A Pipeline built from an image is compiled by a Job (``job``); a compiled one is read from the
spec, or from a ConfigMap the reconciler reads and passes in. Input that can never work is an
:class:`Invalid` with the reason its conditions and Event carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconcilers.api.pipeline import InvalidImage, PipelineSpec, content_version, image_version, parse_image
from reconcilers.pipeline.spec import CompiledPipeline, InvalidPipelineSpec, load_compiled

INVALID_IMAGE = "InvalidImage"
INVALID_PIPELINE_SPEC = "InvalidPipelineSpec"
COMPILER_NOT_CONFIGURED = "CompilerNotConfigured"
CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"


@dataclass(frozen=True)
class Invalid:
    reason: str
    message: str


@dataclass(frozen=True)
class FromImage:
    """Compiled by a Job from ``spec.image``."""

    version: str


@dataclass(frozen=True)
class Compiled:
    """Compiled already (inline, or from a ConfigMap)."""

    version: str
    pipeline: CompiledPipeline


def from_image(spec: PipelineSpec, *, compiler_image: str) -> FromImage | Invalid:
    try:
        reference = parse_image(spec.image)
    except InvalidImage as error:
        return Invalid(INVALID_IMAGE, f"image {spec.image!r}: {error}")
    if reference.tag is None and reference.digest is None:
        return Invalid(
            INVALID_IMAGE,
            f"image {spec.image!r} has no tag: the tag is the first part of the pipeline's version, and an "
            "untagged image (an implicit :latest) would give different pipelines the same version; "
            "use image:tag (or image@sha256:digest)",
        )
    if not compiler_image:
        return Invalid(
            COMPILER_NOT_CONFIGURED,
            "Pipelines built from an image need the operator's pipelines.compilerImage setting (the "
            "operator's own image), which is not set",
        )
    return FromImage(image_version(spec))


def from_compiled(spec: PipelineSpec, text: str, *, origin: str) -> Compiled | Invalid:
    """``text`` is the compiled spec, read from ``origin`` (for messages)."""
    try:
        pipeline = load_compiled(text)
    except InvalidPipelineSpec as error:
        return Invalid(INVALID_PIPELINE_SPEC, f"{origin}: {error}")
    return Compiled(spec.compiled_version or content_version(pipeline.canonical), pipeline)
