"""A typed, read-only view of a Pipeline, its two sources, and the reference operator's version.

A Pipeline (``mlp``) is either **built from an image** (the reference operator's fields:
``image``, ``tfxComponents`` for TFX, or ``pipelineFunction`` for a KFP SDK ``@dsl.pipeline``,
with ``env`` and ``beamArgs``; the operator compiles it in a Job) or **already compiled**
(``compiled.pipelineSpec`` inline, or ``compiled.configMapKeyRef``; teams that compile in their
own CI). Its version is the reference's ``Pipeline.ComputeVersion`` for an image
(``<image tag>-<6 hex of the SHA-1 of the spec fields>``), and for a compiled spec the
``compiled.version`` given, else 6 hex of the SHA-1 of the spec's content.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from controller.resource import SPEC_AND_STATUS, Resource
from reconcilers.api import GROUP, VERSION
from reconcilers.api.kfp_objects import KfpObjectView, ObjectHasher

PIPELINES = Resource(GROUP, VERSION, "pipelines", "Pipeline", fields=SPEC_AND_STATUS)

SUCCEEDED = "Succeeded"


@dataclass(frozen=True)
class ConfigMapKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class PipelineSpec:
    image: str
    tfx_components: str
    pipeline_function: str
    env: tuple[tuple[str, str], ...]
    beam_args: tuple[tuple[str, str], ...]
    compiled_version: str
    compiled_pipeline_spec: str | None
    compiled_config_map: ConfigMapKeyRef | None

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> PipelineSpec:
        compiled = spec.get("compiled") or {}
        ref = compiled.get("configMapKeyRef")
        return cls(
            image=spec.get("image") or "",
            tfx_components=spec.get("tfxComponents") or "",
            pipeline_function=spec.get("pipelineFunction") or "",
            env=_named_values(spec.get("env")),
            beam_args=_named_values(spec.get("beamArgs")),
            compiled_version=compiled.get("version") or "",
            compiled_pipeline_spec=compiled.get("pipelineSpec"),
            compiled_config_map=ConfigMapKeyRef(ref["name"], ref["key"]) if ref else None,
        )

    @property
    def is_compiled(self) -> bool:
        return self.compiled_pipeline_spec is not None or self.compiled_config_map is not None

    @property
    def framework(self) -> str:
        """``tfx`` or ``kfp`` (the KFP SDK), for a Pipeline built from an image."""
        return "tfx" if self.tfx_components else "kfp"

    @property
    def function(self) -> str:
        """The ``module.function`` to compile: TFX components, or a KFP ``@dsl.pipeline``."""
        return self.tfx_components or self.pipeline_function


def _named_values(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(v.get("name", "")), str(v.get("value", ""))) for v in raw or ())


def image_version(spec: PipelineSpec) -> str:
    """The reference operator's ``Pipeline.ComputeVersion``.

    ``ComputeHash`` writes image, tfxComponents, env and beamArgs (lists sorted by name, then
    value); ``pipelineFunction``, which the reference does not know, is written after them only
    when set, so a reference-shaped spec has the reference's version. The image's tag comes first,
    ``latest`` for an untagged name, nothing for a digest-only or malformed reference.
    """
    hasher = ObjectHasher().field(spec.image).field(spec.tfx_components)
    hasher.named_values(spec.env).named_values(spec.beam_args)
    if spec.pipeline_function:
        hasher.field(spec.pipeline_function)
    digest = hasher.version()
    try:
        reference = parse_image(spec.image)
    except InvalidImage:
        return digest
    if reference.tag is None and reference.digest is None:
        return f"latest-{digest}"
    return f"{reference.tag}-{digest}" if reference.tag is not None else digest


def content_version(canonical_content: str) -> str:
    """The version of a compiled spec: its content hashed as the reference hashes a string field."""
    return ObjectHasher().field(canonical_content).version()


# -- container image references (github.com/distribution/reference) ------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
MAX_NAME_LENGTH = 255


class InvalidImage(ValueError):
    """Not a container image reference."""


@dataclass(frozen=True)
class ImageReference:
    name: str  # normalized: docker.io/library/python
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageReference:
    """``reference.ParseNormalizedNamed``: a reference as Docker reads it, or :class:`InvalidImage`."""
    if _IDENTIFIER.fullmatch(image):
        raise InvalidImage(f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(image)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidImage(f"invalid reference format: repository name ({remote}) must be lowercase")
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise InvalidImage(f"invalid reference format: {image!r}")
    name, tag, digest = match.groups()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidImage(f"repository name must not be more than {MAX_NAME_LENGTH} characters")
    if digest is not None:
        algorithm, _, hex_part = digest.partition(":")
        if _DIGEST_LENGTHS.get(algorithm) != len(hex_part):
            raise InvalidImage(f"invalid digest {digest!r}")
    return ImageReference(name=name, tag=tag, digest=digest)


def _split_domain(image: str) -> tuple[str, str]:
    first, slash, rest = image.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = "docker.io", image
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


# -- the object --------------------------------------------------------------------------------


class PipelineView(KfpObjectView):
    """A Pipeline object as read from the cache. Never mutates the underlying dict."""

    @cached_property
    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_dict(self.obj.get("spec") or {})

    @property
    def version(self) -> str:
        """``status.version``: the version the spec describes, synchronized or being synchronized."""
        return str(self.status.get("version") or "")

    @property
    def is_ready(self) -> bool:
        """Synchronized: its ``status.version`` is in KFP, for Runs to use."""
        return (
            self.state == SUCCEEDED
            and bool(self.version)
            and self.kfp_id is not None
            and not self.is_deleting
            and int(self.status.get("observedGeneration") or 0) == self.generation
        )

    def not_ready_reason(self) -> str:
        """What the Pipeline is doing instead of being ready, in words (for a waiting Run)."""
        if self.is_deleting:
            return "it is being deleted"
        synchronized = self.condition("Synchronized") or {}
        state = self.state or "not synchronized yet"
        reason = synchronized.get("reason")
        message = synchronized.get("message")
        if self.state == SUCCEEDED:
            state = "being updated"
        detail = f" ({reason}: {message})" if reason and message else ""
        return f"it is {state}{detail}"
