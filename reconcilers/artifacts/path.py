"""Artifact paths: ``COMPONENT:OUTPUT[:INDEX][[FILTER]]``, naming an output artifact of a run.

* COMPONENT is the pipeline task that produced the artifact, OUTPUT the name of its output.
* INDEX picks one artifact when the output has several, counting from 0; it defaults to 0, and
  ``Trainer:model:`` (an empty index) means index 0 too.
* FILTER, between square brackets, is then checked against that artifact's custom properties:
  the path names the artifact only if it holds (see ``reconcilers.artifacts.filter`` for the
  language), e.g. ``Pusher:pushed_model[pushed == 1]``.

No part may contain ``:``, ``[`` or ``]``. These are the rules of the Run resource's CRD
pattern ``^([^\\[\\]:]+):([^\\[\\]:]+)(?::(\\d*))?(?:\\[([^\\[\\]:]+)\\])?$``; this module accepts
exactly what that pattern accepts, and then also requires the filter to be valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from reconcilers.artifacts.filter import Filter, InvalidArtifactFilter, parse_filter

__all__ = ["ArtifactPath", "InvalidArtifactPath", "parse_artifact_path"]

# The CRD pattern, with \d spelled [0-9]: Python's \d would also accept non-ASCII digits.
_ARTIFACT_PATH = re.compile(r"([^\[\]:]+):([^\[\]:]+)(?::([0-9]*))?(?:\[([^\[\]:]+)\])?")
_FORBIDDEN = re.compile(r"[\[\]:]")
_SYNTAX = "COMPONENT:OUTPUT[:INDEX][[FILTER]], e.g. Pusher:pushed_model:0[pushed == 1]"
# Go's strconv.Atoi, which the reference operator parses the index with, stops at int64.
_MAX_INDEX = 2**63 - 1
_SHOWN_LENGTH = 200


class InvalidArtifactPath(ValueError):
    """An artifact path that is not valid. ``filter_error`` is set when only its filter is not."""

    def __init__(self, message: str, filter_error: InvalidArtifactFilter | None = None) -> None:
        super().__init__(message)
        self.filter_error = filter_error


@dataclass(frozen=True)
class ArtifactPath:
    component: str
    output: str
    index: int = 0
    filter: Filter | None = None

    def __post_init__(self) -> None:
        for part, name in ((self.component, "component"), (self.output, "output")):
            if not part or _FORBIDDEN.search(part):
                raise InvalidArtifactPath(f"the {name} name {part!r} is empty or contains ':', '[' or ']'")
        if not 0 <= self.index <= _MAX_INDEX:
            raise InvalidArtifactPath(f"the index {self.index} is out of range")

    def __str__(self) -> str:
        reference = f"{self.component}:{self.output}:{self.index}"
        return reference if self.filter is None else f"{reference}[{self.filter}]"


# The same few paths are parsed for every Run of a pipeline (when it is submitted, when its
# artifacts are resolved); the parsed path is immutable, so a parse is made once per path.
_PARSED_PATHS = 1024


@lru_cache(maxsize=_PARSED_PATHS)
def parse_artifact_path(text: str) -> ArtifactPath:
    """Parse an artifact path, raising InvalidArtifactPath with a message a user can act on."""
    match = _ARTIFACT_PATH.fullmatch(text)
    if match is None:
        raise InvalidArtifactPath(f"invalid artifact path {_show(text)}: {_why_not(text)}")
    component, output, index_text, filter_text = match.groups()
    index = _parse_index(index_text or "0")
    if index is None:
        raise InvalidArtifactPath(f"invalid artifact path {_show(text)}: the index {index_text} is too large")
    artifact_filter = None
    if filter_text is not None:
        try:
            artifact_filter = parse_filter(filter_text)
        except InvalidArtifactFilter as error:
            column = match.start(4) + error.position + 1
            raise InvalidArtifactPath(
                f"invalid filter in artifact path {_show(text)}: {error.message} (at column {column})",
                filter_error=error,
            ) from error
    return ArtifactPath(component, output, index, artifact_filter)


def _parse_index(digits: str) -> int | None:
    """The index, or None when it is too large."""
    significant = digits.lstrip("0") or "0"
    # Checked by length first: int() refuses strings of thousands of digits.
    if len(significant) > len(str(_MAX_INDEX)) or int(significant) > _MAX_INDEX:
        return None
    return int(significant)


def _show(text: str) -> str:
    shown = text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."
    return f'"{shown}"'


def _why_not(text: str) -> str:
    """Say why a path that does not match the pattern is invalid."""
    if not text:
        return f"it is empty; expected {_SYNTAX}"
    reference, bracket, filter_part = text.partition("[")
    if "]" in reference:
        return "']' without an opening '['"
    if bracket:
        problem = _filter_problem(filter_part)
        if problem:
            return problem
    parts = reference.split(":")
    if len(parts) == 1:
        return f"missing ':' and the output name; expected {_SYNTAX}"
    if len(parts) > 3:
        return f"too many ':'; expected {_SYNTAX}"
    if not parts[0]:
        return "the component name before the first ':' is empty"
    if not parts[1]:
        return "the output name after the first ':' is empty"
    if len(parts) == 3 and not (parts[2].isascii() and parts[2].isdigit()):
        return f"the index {parts[2]!r} is not a whole number of 0 or more"
    return f"expected {_SYNTAX}"


def _filter_problem(filter_part: str) -> str | None:
    """What is wrong with the text after the first '[' (its closing ']' included), if anything."""
    if not filter_part.endswith("]"):
        if "]" in filter_part:
            return "unexpected text after the filter's closing ']'"
        return "the filter has no closing ']'"
    inner = filter_part[:-1]
    if not inner:
        return "the filter between '[' and ']' is empty"
    if _FORBIDDEN.search(inner):
        return (
            "a filter cannot contain ':', '[' or ']' (inside a string, write them as \\x3a, \\x5b and \\x5d)"
        )
    return None
