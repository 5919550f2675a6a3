"""API resources addressed generically by path.

Informers, the Kubernetes helpers and leader election talk to the API through raw paths
(``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` otherwise), so one code
path serves core types and custom resources alike, and objects stay plain ``dict``s exactly as
the API serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

# The top-level fields of most objects besides apiVersion, kind and metadata.
SPEC_AND_STATUS = ("spec", "status")


@dataclass(frozen=True)
class Resource:
    """A resource type: ``group`` is ``""`` for the core group; ``plural`` is the URL segment.

    ``fields`` names the top-level fields of its objects besides ``apiVersion``, ``kind`` and
    ``metadata``, when they are known (a custom resource with a structural schema has no
    others): the informer cache then decodes only those (``controller.transform``). ``None``
    keeps whatever an object has.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    fields: tuple[str, ...] | None = None

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field of objects of this type (``v1`` or ``group/version``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        """Returns the URL path of the collection or of one object.

        ``namespace=None`` (or ``""``) addresses a namespaced collection across all namespaces;
        ``name`` requires the namespace for namespaced resources.
        """
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        elif self.namespaced and name is not None:
            raise ValueError(f"{self.plural} is namespaced: a namespace is required to address {name!r}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
