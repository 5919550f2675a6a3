"""What the Pipeline reconciler needs from KFP (a Protocol), and which versions retention removes (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol

from reconcilers.api.kfp_objects import Owner, owner_of


class KfpPipelines(Protocol):
    """KFP's pipeline API (``kfp_operator.clients.kfp.KfpClient``); every call raises ``KfpError``."""

    @property
    def multi_user(self) -> bool: ...

    def get_pipeline_by_name(self, name: str, namespace: str) -> dict[str, Any] | None: ...

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any] | None: ...

    def create_pipeline(self, *, name: str, description: str, namespace: str) -> dict[str, Any]: ...

    def delete_pipeline(self, pipeline_id: str) -> None: ...

    def find_pipeline_version(self, pipeline_id: str, name: str) -> dict[str, Any] | None:
        """The version of that name (names are unique per pipeline), or None."""
        ...

    def all_pipeline_versions(self, pipeline_id: str) -> Iterator[dict[str, Any]]:
        """Every version of the pipeline, oldest first (without their specs)."""
        ...

    def upload_pipeline_version(
        self, pipeline_id: str, *, name: str, description: str, content: str
    ) -> dict[str, Any]: ...

    def delete_pipeline_version(self, pipeline_id: str, version_id: str) -> None: ...


def owned_by(obj: Mapping[str, Any] | None, owner: Owner) -> bool:
    """Whether a KFP pipeline or version carries ``owner``'s marker."""
    return obj is not None and owner.owns(owner_of(obj.get("description")))


def versions_beyond_retention(
    versions: Sequence[Mapping[str, Any]],
    *,
    owner: Owner,
    keep: int,
    current: str,
    in_use: Collection[str],
) -> list[Mapping[str, Any]]:
    """The operator's versions older than its newest ``keep`` (0: keep all), oldest first.

    Never the current version, one a Run or RunConfiguration still needs (``in_use``, by name),
    nor one the operator did not upload. ``versions`` are oldest first.
    """
    if keep <= 0:
        return []
    ours = [v for v in versions if owned_by(v, owner)]
    older = ours[: max(0, len(ours) - keep)]
    return [v for v in older if _name(v) != current and _name(v) not in in_use]


def _name(version: Mapping[str, Any]) -> str:
    return str(version.get("name") or version.get("display_name") or "")
