"""Reading a compiled pipeline spec (KFP IR) before it is uploaded, as a pure function.

A compiled pipeline is YAML or JSON: the IR (``pipelineInfo``, ``root``, ``schemaVersion``...),
optionally followed by a platform spec document, as the KFP SDK writes it. A TFX pipeline
compiled by ``KubeflowV2DagRunner`` is a PipelineJob whose ``pipelineSpec`` is the IR: it is
unwrapped. An Argo workflow (a KFP v1 pipeline, ``KubeflowDagRunner``) is refused: KFP v2 does not
pass runtime parameters to those. Checking here gives a clear reason on the Pipeline before KFP
is asked; KFP checks again on upload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# ConfigMaps and the API server's requests are limited to about 1 MiB; KFP takes up to 32 MiB.
MAX_SPEC_BYTES = 3 * 1024 * 1024


class InvalidPipelineSpec(ValueError):
    """Not a compiled KFP v2 pipeline."""


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled pipeline ready for upload.

    ``content`` is what is uploaded; ``digest`` the SHA-1 of its canonical JSON form (so that
    reformatting the same pipeline changes nothing), ``canonical`` that form.
    """

    content: str
    canonical: str
    name: str

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.canonical.encode(), usedforsecurity=False).hexdigest()


def load_compiled(text: str) -> CompiledPipeline:
    """Parses and checks a compiled pipeline; raises :class:`InvalidPipelineSpec` saying why not."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise InvalidPipelineSpec(f"the pipeline spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise InvalidPipelineSpec(f"not YAML or JSON: {_first_line(error)}") from None
    if not documents:
        raise InvalidPipelineSpec("the pipeline spec is empty")
    if len(documents) > 2:
        raise InvalidPipelineSpec(
            f"{len(documents)} YAML documents: expected the pipeline spec, optionally followed by a "
            "platform spec"
        )
    spec = documents[0]
    if not isinstance(spec, Mapping):
        raise InvalidPipelineSpec("the pipeline spec is not a YAML mapping")
    unwrapped = False
    if "pipelineSpec" in spec and "root" not in spec:
        spec = spec["pipelineSpec"]  # a PipelineJob (TFX's KubeflowV2DagRunner writes one)
        unwrapped = True
        if not isinstance(spec, Mapping):
            raise InvalidPipelineSpec("pipelineSpec is not a mapping")
    if spec.get("kind") == "Workflow" or str(spec.get("apiVersion", "")).startswith("argoproj.io"):
        raise InvalidPipelineSpec(
            "this is an Argo Workflow (a KFP v1 pipeline, as TFX's KubeflowDagRunner writes); KFP v2 "
            "needs the IR pipeline spec (KFP SDK v2, or TFX's KubeflowV2DagRunner)"
        )
    missing = [key for key in ("pipelineInfo", "root") if not isinstance(spec.get(key), Mapping)]
    if not isinstance(spec.get("schemaVersion"), str):
        missing.append("schemaVersion")
    if missing:
        raise InvalidPipelineSpec(
            f"not a compiled KFP pipeline: missing {', '.join(missing)} (expected the YAML the KFP SDK's "
            "compiler writes)"
        )
    name = spec["pipelineInfo"].get("name")
    if not isinstance(name, str) or not name:
        raise InvalidPipelineSpec("not a compiled KFP pipeline: pipelineInfo.name is missing")
    platform = documents[1] if len(documents) > 1 else None
    if platform is not None and not isinstance(platform, Mapping):
        raise InvalidPipelineSpec("the second YAML document (the platform spec) is not a mapping")
    parts: list[Any] = [spec] if platform is None else [spec, platform]
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    content = json.dumps(spec, indent=1, default=str) if unwrapped else text
    return CompiledPipeline(content=content, canonical=canonical, name=name)


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
