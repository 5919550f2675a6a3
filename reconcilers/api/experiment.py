"""A typed, read-only view of an Experiment (``mlexp``): a KFP experiment declared in the cluster."""

from __future__ import annotations

from controller.resource import SPEC_AND_STATUS, Resource
from reconcilers.api import GROUP, VERSION
from reconcilers.api.kfp_objects import KfpObjectView, ObjectHasher

EXPERIMENTS = Resource(GROUP, VERSION, "experiments", "Experiment", fields=SPEC_AND_STATUS)

SUCCEEDED = "Succeeded"


def experiment_version(description: str) -> str:
    """The reference operator's ``Experiment.ComputeVersion``: a hash of the description."""
    return ObjectHasher().field(description).version()


class ExperimentView(KfpObjectView):
    """An Experiment object as read from the cache. Never mutates the underlying dict."""

    @property
    def description(self) -> str:
        return str((self.obj.get("spec") or {}).get("description") or "")

    @property
    def is_ready(self) -> bool:
        """Its KFP experiment exists, for Runs to run in."""
        return self.state == SUCCEEDED and self.kfp_id is not None and not self.is_deleting

    def not_ready_reason(self) -> str:
        if self.is_deleting:
            return "it is being deleted"
        synchronized = self.condition("Synchronized") or {}
        reason, message = synchronized.get("reason"), synchronized.get("message")
        detail = f" ({reason}: {message})" if reason and message else ""
        return f"it is {self.state or 'not synchronized yet'}{detail}"
