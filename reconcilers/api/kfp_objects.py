"""How Pipeline and Experiment resources appear in KFP: their names, the mark of ownership, version hashes.

**Names.** A resource ``name`` in ``namespace`` is called in KFP either ``name`` (as the reference
operator named them up to v0.6) or ``<namespace>-<name>`` (v0.7 and later); the ``kfpNames``
setting chooses. Runs and RunConfigurations that go through a resource use its KFP objects by id,
so they follow whichever naming the resource was synchronized with.

**Ownership.** KFP pipelines, versions and experiments carry no labels, so what the operator
creates carries a marker line in its description naming the resource (kind, namespace, name and
UID). The operator changes and deletes only what carries its marker: an object of the same name
made by someone else is never overwritten or deleted (unless the resource asks to adopt it, and
even then only what the operator adds to it is ever deleted).

**Version hashes.** :class:`ObjectHasher` is the reference operator's: SHA-1, a zero byte after
every field and after every list; a version is the hex of its first three bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from reconcilers.api import GROUP
from reconcilers.api.view import ObjectView

# The kfpNames setting.
NAMES_AS_IS = "name"
NAMES_NAMESPACED = "namespace-name"
KFP_NAMINGS = (NAMES_AS_IS, NAMES_NAMESPACED)

# On a Pipeline or Experiment: use an existing KFP object of that name that the operator did not
# create (for teams migrating from another operator). Such an object is never deleted.
ADOPT_ANNOTATION = f"{GROUP}/adopt-existing"

_MARKER = re.compile(
    r"^kfp-operator: owner=(?P<kind>[A-Za-z]+) (?P<namespace>[^/\s]+)/(?P<name>\S+) uid=(?P<uid>\S+)"
    r"(?: spec=(?P<spec>[0-9a-f]+))?$",
    re.MULTILINE,
)


class KfpObjectView(ObjectView):
    """A resource the operator makes in KFP (a Pipeline or an Experiment), as read from the cache."""

    @property
    def adopts_existing(self) -> bool:
        return str((self.metadata.get("annotations") or {}).get(ADOPT_ANNOTATION, "")).lower() == "true"

    @property
    def state(self) -> str:
        return str(self.status.get("synchronizationState") or "")

    @property
    def kfp_id(self) -> str | None:
        """The id of its KFP object: the part of ``status.providerId`` after the provider's name."""
        provider_id = self.status.get("providerId")
        return str(provider_id).rpartition(":")[2] or None if provider_id else None


def kfp_name(naming: str, namespace: str, name: str) -> str:
    """The KFP name of the resource ``namespace/name`` under the ``kfpNames`` setting."""
    return f"{namespace}-{name}" if naming == NAMES_NAMESPACED else name


@dataclass(frozen=True)
class Owner:
    """The resource a KFP object was created for, as its description's marker says."""

    kind: str
    namespace: str
    name: str
    uid: str
    spec_digest: str | None = None

    def marker(self) -> str:
        line = f"kfp-operator: owner={self.kind} {self.namespace}/{self.name} uid={self.uid}"
        return f"{line} spec={self.spec_digest}" if self.spec_digest else line

    def describe(self, text: str = "") -> str:
        """A KFP description: ``text`` (the user's), then the marker on a line of its own."""
        return f"{text}\n\n{self.marker()}" if text else self.marker()

    def owns(self, other: Owner | None) -> bool:
        """Whether ``other`` (a marker read from KFP) names this resource.

        The same namespace and name with another UID is an earlier incarnation of the resource
        (deleted while KFP was unreachable, say), so it counts: only the same user can have it.
        """
        return (
            other is not None
            and other.kind == self.kind
            and other.namespace == self.namespace
            and other.name == self.name
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def owner_of(description: str | None) -> Owner | None:
    """The marker of a KFP object's description, if the operator created it."""
    match = _MARKER.search(description or "")
    if match is None:
        return None
    return Owner(
        kind=match["kind"],
        namespace=match["namespace"],
        name=match["name"],
        uid=match["uid"],
        spec_digest=match["spec"],
    )


def user_description(description: str | None) -> str:
    """A KFP description without the operator's marker (what the user wrote)."""
    return _MARKER.sub("", description or "").rstrip()


class ObjectHasher:
    """The reference operator's ``ObjectHasher``: SHA-1 over fields, each followed by a zero byte."""

    def __init__(self) -> None:
        self._sha = hashlib.sha1(usedforsecurity=False)

    def field(self, value: str) -> ObjectHasher:
        self._sha.update(value.encode())
        self._sha.update(b"\x00")
        return self

    def named_values(self, values: Iterable[tuple[str, str]]) -> ObjectHasher:
        """``WriteKVListField``: sorted by name then value, each name and value, then a separator."""
        for name, value in sorted(values):
            self.field(name)
            self.field(value)
        self._sha.update(b"\x00")
        return self

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def version(self) -> str:
        """``ComputeVersion``'s hash part: the hex of the first three bytes."""
        return self.hexdigest()[:6]
