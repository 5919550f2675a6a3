"""The CustomResourceDefinitions of the API, assembled from one description of its schemas.

The Run and the RunConfiguration share the run specification and several status shapes, so the
schemas are built here from small pieces (as controller-gen builds them from Go types), with the
group, version and kinds of :mod:`reconcilers.api`. ``hack/gen_crds.py`` (``make generate``)
writes them to ``crds/`` and the chart; tests check that the written files are current and that
the model the reconcilers read (:class:`reconcilers.api.run.RunSpec`) reads exactly the fields
the schema allows.
"""

from __future__ import annotations

from typing import Any

from reconcilers.api import GROUP, RUN_CONFIGURATIONS, RUNS, VERSION
from reconcilers.api.experiment import EXPERIMENTS
from reconcilers.api.pipeline import PIPELINES

# The reference operator's patterns, kept so existing manifests stay valid.
PIPELINE_PATTERN = r"^[\w\-]+(?::[\w\-_.]+)?$"
ARTIFACT_PATH_PATTERN = r"^([^\[\]:]+):([^\[\]:]+)(?::(\d*))?(?:\[([^\[\]:]+)\])?$"

# A RunConfiguration name, optionally after its namespace: `name` or `namespace/name`.
REFERENCE_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

# A cron expression: a macro, or five or six fields separated by single spaces.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( [^ ]+){4,5})$"
MAX_CRON_LENGTH = 256
MAX_SCHEDULES = 16
# CronJob's history defaults.
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1

# Bounds keep CEL's estimated cost (spec immutability compares whole lists) within
# the API server's budget, and are far above what a pipeline needs.
MAX_LIST_ITEMS = 128
MAX_NAME_LENGTH = 253
MAX_VALUE_LENGTH = 65536
MAX_PATH_LENGTH = 1024


def string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, **extra}


def array(description: str, items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items, **extra}


def timestamp(description: str) -> dict[str, Any]:
    return string(description, format="date-time")


def list_map(description: str, items: dict[str, Any], key: str = "name") -> dict[str, Any]:
    """A list whose items are identified by ``key``: the API server rejects duplicates."""
    return array(
        description,
        items,
        maxItems=MAX_LIST_ITEMS,
        **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]},
    )


def artifact_location_list(description: str) -> dict[str, Any]:
    return array(
        description,
        obj(
            "An output artifact of a pipeline run.",
            {
                "name": string("The artifact's name, as given in the run's spec.artifacts."),
                "location": string("The artifact's URI, as recorded in ML Metadata."),
            },
            required=["name", "location"],
        ),
    )


def run_reference(description: str) -> dict[str, Any]:
    return obj(
        description,
        {
            "providerId": string("The provider run id, `<provider>:<run id>`."),
            "artifacts": artifact_location_list("The run's resolved output artifacts."),
            "runName": string("The Run resource that produced this run, `<namespace>/<name>`."),
            "finishedAt": timestamp(
                "When the run finished in the provider; an older run never replaces a newer one."
            ),
        },
    )


def run_spec(description: str) -> dict[str, Any]:
    runtime_parameter = obj(
        "A parameter passed to the pipeline run. Exactly one of value or valueFrom must be set.",
        {
            "name": string(
                "The name of the runtime parameter as referenced by the pipeline.",
                minLength=1,
                maxLength=MAX_NAME_LENGTH,
            ),
            "value": string(
                "The value of the runtime parameter. It is converted to the type the pipeline "
                "declares for this parameter (integer, number, boolean, list or struct as JSON).",
                maxLength=MAX_VALUE_LENGTH,
            ),
            "valueFrom": obj(
                "Resolves the value from another resource.",
                {
                    "runConfigurationRef": obj(
                        "Takes the value from an output artifact of the latest succeeded run of a "
                        "RunConfiguration. The Run waits until it is available.",
                        {
                            "name": string(
                                "The RunConfiguration to resolve: its name (in the Run's namespace), or "
                                "namespace/name for one in another namespace (if the operator allows it).",
                                minLength=1,
                                maxLength=MAX_NAME_LENGTH + 64,
                                pattern=REFERENCE_PATTERN,
                            ),
                            "outputArtifact": string(
                                "The name of the output artifact (as named in the RunConfiguration's "
                                "spec.run.artifacts) whose location becomes the value.",
                                minLength=1,
                                maxLength=MAX_NAME_LENGTH,
                            ),
                        },
                        required=["name", "outputArtifact"],
                    ),
                },
                required=["runConfigurationRef"],
            ),
        },
        required=["name"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "only one of value or valueFrom can be set",
                },
                {
                    "rule": "has(self.value) || has(self.valueFrom)",
                    "message": "one of value or valueFrom must be set",
                },
            ]
        },
    )
    output_artifact = obj(
        "An output artifact of the pipeline run to expose in status and in the run-completion event.",
        {
            "name": string(
                "The name used for this artifact in status, events and references.",
                minLength=1,
                maxLength=MAX_NAME_LENGTH,
            ),
            "path": string(
                "Where the artifact is in the pipeline graph: `COMPONENT:OUTPUT[:INDEX][[FILTER]]`, "
                "for example `Pusher:pushed_model:0[pushed == 1]`. COMPONENT is the task that produces "
                "it, OUTPUT its output name, INDEX (default 0) picks among the matching artifacts, and "
                "FILTER is a boolean expression over the artifact's properties.",
                pattern=ARTIFACT_PATH_PATTERN,
                maxLength=MAX_PATH_LENGTH,
            ),
        },
        required=["name", "path"],
    )
    return obj(
        description,
        {
            "pipeline": string(
                "The pipeline to run: `name` or `name:version`. Without a version the latest version "
                "in KFP at the time the run is submitted is used, recorded in "
                "status.observedPipelineVersion.",
                pattern=PIPELINE_PATTERN,
                maxLength=MAX_NAME_LENGTH,
            ),
            "experimentName": string(
                "The KFP experiment to run in, by display name. Defaults to the operator's "
                "defaultExperiment.",
                maxLength=MAX_NAME_LENGTH,
            ),
            "runtimeParameters": list_map(
                "Runtime parameters for the pipeline run; names are unique.", runtime_parameter
            ),
            "artifacts": list_map(
                "Output artifacts to resolve when the run has succeeded, included in status and in the "
                "run-completion event; names are unique.",
                output_artifact,
            ),
        },
        required=["pipeline"],
    )


def conditions() -> dict[str, Any]:
    condition = obj(
        "The standard Kubernetes condition (metav1.Condition).",
        {
            "type": string(
                "The condition type: Synchronized, DependenciesResolved or Completed.",
                maxLength=316,
                pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            ),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "minimum": 0,
                "description": "The metadata.generation the condition was set from.",
            },
            "lastTransitionTime": timestamp("When the condition last changed status."),
            "reason": string(
                "A CamelCase word saying why the condition has this status.",
                maxLength=1024,
                minLength=1,
                pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            ),
            "message": string("What is happening, in words a user can act on.", maxLength=32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"],
    )
    return array(
        "The current state of the resource, one condition per type.",
        condition,
        **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def synchronization_state(description: str) -> dict[str, Any]:
    return string(
        description,
        enum=["Creating", "Succeeded", "Updating", "Deleting", "Deleted", "Failed"],
    )


def dependencies() -> dict[str, Any]:
    return obj(
        "What the run's parameters were resolved from.",
        {
            "runConfigurations": {
                "type": "object",
                "description": "For each referenced RunConfiguration (by name), the succeeded run whose "
                "artifacts the parameters use, with only the referenced artifacts.",
                "additionalProperties": run_reference("A referenced RunConfiguration's latest run."),
            }
        },
    )


def run_status() -> dict[str, Any]:
    return obj(
        "The observed state of the Run.",
        {
            "providerId": string(
                "The KFP run this Run submitted, `<provider>:<run id>`; set as soon as the run is known."
            ),
            "synchronizationState": synchronization_state(
                "Whether the run was submitted to the provider: Creating while it is being submitted, "
                "Succeeded once submitted (not whether it succeeded; see completionState), Failed if it "
                "could not be submitted, Deleting and Deleted while it is being deleted."
            ),
            "version": string("A short hash of the spec and the observed pipeline version."),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation the status was computed from.",
            },
            "observedPipelineVersion": string(
                "The pipeline version the run was submitted with, frozen at submission."
            ),
            "dependencies": dependencies(),
            "completionState": string(
                "The outcome of the KFP run: Succeeded, or Failed (failed or canceled).",
                enum=["Succeeded", "Failed"],
            ),
            "markedCompletedAt": timestamp("When the operator recorded the completion."),
            "startedAt": timestamp("When the KFP run was created."),
            "finishedAt": timestamp("When the KFP run finished; the TTL counts from here."),
            "artifacts": artifact_location_list(
                "The output artifacts named in spec.artifacts, resolved from ML Metadata after the run "
                "succeeded."
            ),
            "completionEvent": obj(
                "The run-completion event and where it has been delivered.",
                {
                    "id": string("The event id, stable for this completion so consumers can de-duplicate."),
                    "deliveredTo": array(
                        "The sinks that acknowledged the event.",
                        string("A sink name: nats, or http:<url>."),
                        **{"x-kubernetes-list-type": "set"},
                    ),
                    "deliveredAt": timestamp("When every configured sink had acknowledged the event."),
                },
            ),
            "runConfigurationUpdatedAt": timestamp(
                "When the owning RunConfiguration's latest succeeded run was updated from this run, or "
                "found to need no update."
            ),
            "conditions": conditions(),
        },
    )


def run_configuration_status() -> dict[str, Any]:
    return obj(
        "The observed state of the RunConfiguration.",
        {
            "synchronizationState": synchronization_state("The provider synchronization state."),
            "provider": string("The provider the RunConfiguration is synchronized with."),
            "observedPipelineVersion": string("The pipeline version last observed."),
            "triggeredPipelineVersion": string("The pipeline version that last triggered a run."),
            "latestRuns": obj(
                "The latest runs of this RunConfiguration.",
                {
                    "succeeded": run_reference(
                        "The latest succeeded run; parameters of other Runs resolve from its artifacts."
                    )
                },
            ),
            "dependencies": dependencies(),
            "triggers": obj(
                "The state of the triggers.",
                {
                    "runConfigurations": {
                        "type": "object",
                        "description": "For each triggering RunConfiguration, the run that last triggered.",
                        "additionalProperties": obj(
                            "A triggering run.", {"providerId": string("The provider run id.")}
                        ),
                    },
                    "runSpec": obj(
                        "The run specification that last triggered.",
                        {"version": string("The version of the run specification.")},
                    ),
                },
            ),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation the status was computed from.",
            },
            "lastScheduleTime": timestamp(
                "The latest schedule tick handled (a Run created, or the tick skipped)."
            ),
            "nextScheduleTime": timestamp("The next schedule tick."),
            "conditions": conditions(),
        },
    )


def crd(
    kind: str,
    plural: str,
    short_name: str,
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
    selectable_fields: tuple[str, ...] = (),
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
        "schema": {
            "openAPIV3Schema": obj(
                description,
                {
                    "apiVersion": string("The versioned schema of this object."),
                    "kind": string("The REST resource this object represents."),
                    "metadata": {"type": "object"},
                    "spec": spec,
                    "status": status,
                },
            )
        },
    }
    if selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["kfp"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def column(name: str, json_path: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "string", "jsonPath": json_path, "description": description, **extra}


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def run_crd() -> dict[str, Any]:
    """The Run's CustomResourceDefinition."""
    spec = run_spec("The desired run. Immutable once created: create a new Run to run again.")
    spec["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": "spec is immutable: create a new Run instead"}
    ]
    return crd(
        kind=RUNS.kind,
        plural=RUNS.plural,
        short_name="mlr",
        description="A one-off Kubeflow Pipelines run. The operator resolves its pipeline version, "
        "experiment and parameters, submits it to KFP exactly once, tracks it to completion, resolves its "
        "output artifacts and publishes a run-completion event.",
        spec=spec,
        status=run_status(),
        columns=[
            column("ProviderId", ".status.providerId", "The KFP run."),
            column("SynchronizationState", ".status.synchronizationState", "Whether the run was submitted."),
            column("Version", ".status.version", "A short hash of the spec."),
            column("CompletionState", ".status.completionState", "The outcome of the run."),
            AGE,
            column(
                "Dependencies",
                '.status.conditions[?(@.type=="DependenciesResolved")].reason',
                "Resolved, or why the run waits.",
                priority=1,
            ),
            column("Pipeline", ".spec.pipeline", "The pipeline.", priority=1),
        ],
        # `kubectl get runs --field-selector status.completionState=Failed`; and the operator
        # lists the Runs not completed yet first (an absent field selects as "").
        selectable_fields=(".status.completionState",),
    )


def run_configuration_crd() -> dict[str, Any]:
    """The RunConfiguration's CustomResourceDefinition."""
    history_limit = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 1000}
    spec = obj(
        "The desired RunConfiguration: the run to create, and what creates it.",
        {
            "run": run_spec(
                "The run to create when triggered; its Runs carry it with the pipeline version pinned."
            ),
            "triggers": obj(
                "What creates Runs of this configuration. Causes that arrive together create one Run.",
                {
                    "schedules": array(
                        "Cron expressions: at each tick the operator creates a Run, as a CronJob "
                        "creates Jobs. Five fields (minute hour day-of-month month day-of-week), six "
                        "with seconds first (as KFP writes them), or a macro such as @hourly; see "
                        "schedulePolicy.",
                        string("A cron expression.", pattern=CRON_PATTERN, maxLength=MAX_CRON_LENGTH),
                        maxItems=MAX_SCHEDULES,
                    ),
                    "onChange": array(
                        "Create a Run when the pipeline gets a new version (pipeline) or spec.run changes "
                        "(runSpec).",
                        string("pipeline or runSpec.", enum=["pipeline", "runSpec"]),
                        maxItems=2,
                        **{"x-kubernetes-list-type": "set"},
                    ),
                    "runConfigurations": array(
                        "Create a Run when one of these RunConfigurations (name, or namespace/name) has a "
                        "new succeeded run.",
                        string(
                            "A RunConfiguration: name or namespace/name.",
                            pattern=REFERENCE_PATTERN,
                            maxLength=MAX_NAME_LENGTH + 64,
                        ),
                        maxItems=MAX_LIST_ITEMS,
                        **{"x-kubernetes-list-type": "set"},
                    ),
                },
            ),
            "schedulePolicy": obj(
                "How schedules fire (the fields of a CronJob).",
                {
                    "timeZone": string(
                        "The IANA time zone the schedules are read in, e.g. Europe/London; default UTC.",
                        maxLength=64,
                    ),
                    "startTime": timestamp("No tick fires before this time."),
                    "endTime": timestamp("No tick fires after this time."),
                    "startingDeadlineSeconds": {
                        "type": "integer",
                        "format": "int64",
                        "minimum": 0,
                        "description": "A tick missed (the operator was not running) is caught up only if at "
                        "most this many seconds late; at most one catch-up Run is created, for the latest "
                        "missed tick. Unset: always caught up.",
                    },
                    "concurrencyPolicy": string(
                        "When a tick comes while a scheduled Run is still active: Allow (default) creates "
                        "another, Forbid skips the tick, Replace deletes the active one (terminating its KFP "
                        "run) and creates the new one.",
                        enum=["Allow", "Forbid", "Replace"],
                    ),
                },
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!has(self.startTime) || !has(self.endTime) || "
                            "timestamp(self.startTime) < timestamp(self.endTime)",
                            "message": "endTime must be after startTime",
                        }
                    ]
                },
            ),
            "successfulRunsHistoryLimit": {
                **history_limit,
                "description": f"How many succeeded Runs to keep (default {DEFAULT_SUCCESSFUL_HISTORY}); "
                "older ones are deleted once their completion event is delivered.",
            },
            "failedRunsHistoryLimit": {
                **history_limit,
                "description": f"How many failed Runs to keep (default {DEFAULT_FAILED_HISTORY}).",
            },
        },
    )
    crd_document = crd(
        kind=RUN_CONFIGURATIONS.kind,
        plural=RUN_CONFIGURATIONS.plural,
        short_name="mlrc",
        description="A recurring or triggered Kubeflow Pipelines run configuration. The operator creates "
        "Runs of spec.run on its schedules and triggers; its status.latestRuns.succeeded is what runtime "
        "parameters of other Runs resolve from.",
        spec=spec,
        status=run_configuration_status(),
        columns=[
            column(
                "SynchronizationState",
                ".status.synchronizationState",
                "Resolved and active, waiting, or failed.",
            ),
            column("Provider", ".status.provider", "The provider."),
            column("LatestSucceededRun", ".status.latestRuns.succeeded.runName", "The latest succeeded Run."),
            {
                "name": "NextSchedule",
                "type": "date",
                "jsonPath": ".status.nextScheduleTime",
                "description": "The next tick of its schedules.",
            },
            AGE,
            column(
                "Reason",
                '.status.conditions[?(@.type=="Synchronized")].reason',
                "Why it is in this state.",
                priority=1,
            ),
            column("Pipeline", ".spec.run.pipeline", "The pipeline.", priority=1),
        ],
    )
    schema = crd_document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["x-kubernetes-validations"] = [
        {
            "rule": "size(self.metadata.name) <= 63",
            "message": "a RunConfiguration's name is the value of its Runs' label "
            "pipelines.kubeflow.org/runconfiguration.name, so at most 63 characters",
        }
    ]
    return crd_document


# A Python `module.function` (the function may be nested in classes or modules: a.b.c).
FUNCTION_PATTERN = r"^$|^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
# A pipeline version name, as the version part of spec.pipeline allows it.
VERSION_NAME_PATTERN = r"^[\w\-_.]+$"
MAX_COMPILED_SPEC_LENGTH = 1024 * 1024
MAX_RESOURCE_NAME = 63


def _named_values(description: str, *, unique: bool) -> dict[str, Any]:
    item = obj(
        "A name and a value.",
        {
            "name": string("The name.", minLength=1, maxLength=MAX_NAME_LENGTH),
            "value": string("The value.", maxLength=MAX_VALUE_LENGTH),
        },
        required=["name"],
    )
    if unique:
        return list_map(description, item)
    return array(description, item, maxItems=MAX_LIST_ITEMS)


def _resource_status(what: str, version: str) -> dict[str, Any]:
    return obj(
        f"The observed state of the {what}.",
        {
            "providerId": string(f"The KFP {what.lower()}: `<provider>:<id>`."),
            "synchronizationState": synchronization_state(
                f"Creating or Updating while the {what.lower()} is being synchronized with KFP, Succeeded "
                "once it is, Failed when it cannot be as written, Deleting while it is removed."
            ),
            "version": string(version),
            "kfpName": string(
                f"The name of the {what.lower()} in KFP (see the operator's kfpNames setting)."
            ),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation the status was computed from.",
            },
            "conditions": conditions(),
        },
    )


def _resource_columns() -> list[dict[str, Any]]:
    return [
        column("ProviderId", ".status.providerId", "The KFP object."),
        column("SynchronizationState", ".status.synchronizationState", "Whether it is in KFP."),
        column("Version", ".status.version", "The version of its spec."),
        column("Ready", '.status.conditions[?(@.type=="Ready")].status', "Whether Runs can use it."),
        AGE,
        column(
            "Reason",
            '.status.conditions[?(@.type=="Synchronized")].reason',
            "Why it is in this state.",
            priority=1,
        ),
        column("KfpName", ".status.kfpName", "Its name in KFP.", priority=1),
    ]


def _limit_name(document: dict[str, Any], kind: str) -> dict[str, Any]:
    schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["x-kubernetes-validations"] = [
        {
            "rule": f"size(self.metadata.name) <= {MAX_RESOURCE_NAME}",
            "message": f"a {kind}'s name is at most {MAX_RESOURCE_NAME} characters (its KFP name may add the "
            "namespace, and KFP names are limited)",
        }
    ]
    return document


def pipeline_crd() -> dict[str, Any]:
    """The Pipeline's CustomResourceDefinition."""
    spec = obj(
        "The pipeline: built from an image (image with tfxComponents or pipelineFunction; the reference "
        "operator's fields), or compiled already (compiled).",
        {
            "image": string(
                "The image holding the pipeline's code, with a tag (the tag starts the version). The "
                "operator compiles the pipeline in a Job running this image.",
                maxLength=1024,
            ),
            "tfxComponents": string(
                "TFX: the module.function returning the pipeline's TFX components.",
                pattern=FUNCTION_PATTERN,
                maxLength=MAX_NAME_LENGTH,
            ),
            "pipelineFunction": string(
                "KFP SDK: the module.function of the @dsl.pipeline to compile.",
                pattern=FUNCTION_PATTERN,
                maxLength=MAX_NAME_LENGTH,
            ),
            "env": _named_values(
                "Environment variables of the compile (the tfxComponents function reads them).", unique=True
            ),
            "beamArgs": _named_values("Beam arguments (TFX), passed as --name=value.", unique=False),
            "compiled": obj(
                "A pipeline compiled already (KFP IR YAML or JSON, as the KFP SDK's compiler writes it), "
                "inline or from a ConfigMap; exactly one of pipelineSpec and configMapKeyRef.",
                {
                    "version": string(
                        "The version's name in KFP; default: 6 hex digits of a hash of the content. A "
                        "version cannot change in KFP: new content needs a new version.",
                        pattern=VERSION_NAME_PATTERN,
                        maxLength=127,
                    ),
                    "pipelineSpec": string("The compiled pipeline.", maxLength=MAX_COMPILED_SPEC_LENGTH),
                    "configMapKeyRef": obj(
                        "A key of a ConfigMap in the Pipeline's namespace holding the compiled pipeline.",
                        {
                            "name": string("The ConfigMap.", minLength=1, maxLength=MAX_NAME_LENGTH),
                            "key": string("The key.", minLength=1, maxLength=MAX_NAME_LENGTH),
                        },
                        required=["name", "key"],
                    ),
                },
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "has(self.pipelineSpec) != has(self.configMapKeyRef)",
                            "message": "set exactly one of compiled.pipelineSpec and "
                            "compiled.configMapKeyRef",
                        }
                    ]
                },
            ),
        },
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.compiled) != (has(self.image) && self.image != '')",
                    "message": "set either image (the operator compiles the pipeline) or compiled (compiled "
                    "already)",
                },
                {
                    "rule": "!has(self.image) || self.image == '' || "
                    "((has(self.tfxComponents) && self.tfxComponents != '') != "
                    "(has(self.pipelineFunction) && self.pipelineFunction != ''))",
                    "message": "with image, set exactly one of tfxComponents (TFX) and pipelineFunction "
                    "(KFP SDK)",
                },
            ]
        },
    )
    return _limit_name(
        crd(
            kind=PIPELINES.kind,
            plural=PIPELINES.plural,
            short_name="mlp",
            description="A Kubeflow Pipelines pipeline. Each version of its spec becomes a version of a KFP "
            "pipeline (compiled by the operator when built from an image); Runs and RunConfigurations "
            "naming it without a version use status.version.",
            spec=spec,
            status=_resource_status(
                "Pipeline", "The version of the spec: `<image tag>-<6 hex>`, or the compiled version."
            ),
            columns=_resource_columns(),
        ),
        PIPELINES.kind,
    )


def experiment_crd() -> dict[str, Any]:
    """The Experiment's CustomResourceDefinition."""
    spec = obj(
        "The experiment.",
        {
            "description": string(
                "The KFP experiment's description. KFP cannot change an experiment: a new description is "
                "applied by recreating the experiment while it has no runs.",
                maxLength=MAX_VALUE_LENGTH,
            )
        },
    )
    return _limit_name(
        crd(
            kind=EXPERIMENTS.kind,
            plural=EXPERIMENTS.plural,
            short_name="mlexp",
            description="A Kubeflow Pipelines experiment. Runs and RunConfigurations whose experimentName "
            "names it run in its KFP experiment.",
            spec=spec,
            status=_resource_status("Experiment", "A short hash of the spec."),
            columns=_resource_columns(),
        ),
        EXPERIMENTS.kind,
    )


def definitions() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition of the API."""
    return [run_crd(), run_configuration_crd(), pipeline_crd(), experiment_crd()]
