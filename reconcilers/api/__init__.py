"""The operator's API, ``pipelines.kubeflow.org/v1alpha5``: its identity here, its objects in the modules.

Group, version, kinds, the finalizer, labels and annotations are defined here and nowhere else;
``reconcilers.api.run`` and ``reconcilers.api.runconfiguration`` give typed read-only views of
the objects, and ``reconcilers.api.crds`` builds the CustomResourceDefinitions from the same
declarations (``make generate`` writes them to ``crds/`` and the chart).
"""

from __future__ import annotations

from controller.resource import SPEC_AND_STATUS, Resource

GROUP = "pipelines.kubeflow.org"
VERSION = "v1alpha5"
API_VERSION = f"{GROUP}/{VERSION}"

RUNS = Resource(GROUP, VERSION, "runs", "Run", fields=SPEC_AND_STATUS)
RUN_CONFIGURATIONS = Resource(GROUP, VERSION, "runconfigurations", "RunConfiguration", fields=SPEC_AND_STATUS)

# The Runs not completed yet (the Run CRD makes status.completionState selectable; a Run without
# it selects as ""): after a restart the operator lists these first and is at work on them while
# the completed ones, however many, are listed behind the watch.
UNCOMPLETED_RUNS = "status.completionState="

FINALIZER = f"finalizer.{GROUP}"
RUN_CONFIGURATION_LABEL = f"{GROUP}/runconfiguration.name"
TTL_ANNOTATION = f"{GROUP}/ttl-after-completion"
