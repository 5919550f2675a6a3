"""The example world of the README: Pipelines, an Experiment and RunConfigurations in the cluster.

``examples/run.yaml`` (the user's example Run) needs the ``penguin-pipeline`` pipeline with
version ``v1-abcdef``, the ``penguin-experiment`` experiment, and a RunConfiguration
``penguin-pipeline-example-generator-runconfiguration`` whose latest succeeded run has an
``examples`` artifact. ``make dev`` declares them as resources and lets the operator put them in
KFP: the two example pipelines as compiled Pipelines (``penguin-pipeline`` inline,
``example-generator`` from a ConfigMap; both from ``examples/pipelines/*.yaml``, with the
versions the examples pin), ``penguin-experiment`` as an Experiment, and ``typed-parameters`` as a
Pipeline built from an image (``kfp-examples:v1``, which the local Job executor maps to
``examples/pipelines``) that a compile Job compiles with the real KFP SDK. The generator
RunConfiguration runs every minute (and once when created); ``penguin-pipeline-runconfiguration``
trains the penguin pipeline whenever the generator succeeds (taking ``EXAMPLES`` from it) or the
Pipeline gets a new version: the chain of RunConfigurations the seed describes.

:class:`KfpExamples` uploads straight to KFP instead (tests and benchmarks that need a pipeline in
KFP without the operator). Everything here is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kfp_server_api
import kubernetes
from kfp_server_api.exceptions import ApiException

from kfp_devstack.binaries import PROJECT_ROOT
from reconcilers.api import GROUP, VERSION

PIPELINES_DIR = PROJECT_ROOT / "examples" / "pipelines"

PENGUIN_PIPELINE = "penguin-pipeline"
PENGUIN_VERSION = "v1-abcdef"
PENGUIN_EXPERIMENT = "penguin-experiment"
EXAMPLE_GENERATOR = "example-generator"
EXAMPLE_GENERATOR_VERSION = "v1"
EXAMPLE_GENERATOR_RUN_CONFIGURATION = "penguin-pipeline-example-generator-runconfiguration"
PENGUIN_RUN_CONFIGURATION = "penguin-pipeline-runconfiguration"
# The Pipeline built from an image: the local Job executor runs the image from examples/pipelines.
EXAMPLES_IMAGE = "kfp-examples"
TYPED_PARAMETERS = "typed-parameters"
EXAMPLE_PIPELINES_CONFIG_MAP = "example-pipelines"
# The ServiceAccount compile Jobs run as (the operator's pipelines.compilerServiceAccount default).
COMPILER_ACCOUNT = "kfp-pipeline-compiler"
# What the operator's pipelines.compilerImage says locally: the executor runs this image's init
# container with the operator's own Python.
COMPILER_IMAGE = "kfp-operator:dev"


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"key": key, "operation": "EQUALS", "string_value": value}]})


@dataclass(frozen=True)
class UploadedPipeline:
    pipeline_id: str
    version_id: str


class KfpExamples:
    """Uploads pipelines and creates experiments through the KFP API (any KFP, emulated or real)."""

    def __init__(self, url: str, *, ca_file: Path | None = None) -> None:
        configuration = kfp_server_api.Configuration(host=url.rstrip("/"))
        configuration.ssl_ca_cert = str(ca_file) if ca_file is not None else None
        client = kfp_server_api.ApiClient(configuration)
        self._pipelines = kfp_server_api.PipelineServiceApi(client)
        self._uploads = kfp_server_api.PipelineUploadServiceApi(client)
        self._experiments = kfp_server_api.ExperimentServiceApi(client)

    def pipeline(self, name: str, version: str, spec_file: Path) -> UploadedPipeline:
        """The pipeline with that version, uploading whichever of the two is missing."""
        try:
            pipeline_id = self._pipelines.pipeline_service_get_pipeline_by_name(name).pipeline_id
        except ApiException as error:
            if error.status != 404:
                raise
            pipeline_id = None
        if pipeline_id is None:
            # Created without a version (an upload would add a default one named like the
            # pipeline), so the named version is the only one and "latest" is never ambiguous.
            pipeline_id = self._pipelines.pipeline_service_create_pipeline(
                kfp_server_api.V2beta1Pipeline(name=name, display_name=name)
            ).pipeline_id
        versions = self._pipelines.pipeline_service_list_pipeline_versions(
            pipeline_id,
            filter=_equals("name", version),
        ).pipeline_versions
        if versions:
            return UploadedPipeline(pipeline_id, versions[0].pipeline_version_id)
        uploaded = self._uploads.upload_pipeline_version(
            str(spec_file), pipelineid=pipeline_id, name=version, display_name=version
        )
        return UploadedPipeline(pipeline_id, uploaded.pipeline_version_id)

    def experiment(self, name: str) -> str:
        found = self._experiments.experiment_service_list_experiments(
            filter=_equals("display_name", name)
        ).experiments
        if found:
            return found[0].experiment_id
        return self._experiments.experiment_service_create_experiment(
            kfp_server_api.V2beta1Experiment(display_name=name)
        ).experiment_id


def example_generator_run_configuration(namespace: str) -> dict[str, Any]:
    """Generates examples every minute, and once right away (onChange: runSpec fires on creation)."""
    return _run_configuration(
        namespace,
        EXAMPLE_GENERATOR_RUN_CONFIGURATION,
        run={
            "pipeline": f"{EXAMPLE_GENERATOR}:{EXAMPLE_GENERATOR_VERSION}",
            "artifacts": [{"name": "examples", "path": "ExampleGen:examples"}],
        },
        triggers={"schedules": ["* * * * *"], "onChange": ["runSpec"]},
    )


def penguin_run_configuration(namespace: str) -> dict[str, Any]:
    """Trains on the latest examples whenever the generator succeeds or the pipeline gets a version."""
    return _run_configuration(
        namespace,
        PENGUIN_RUN_CONFIGURATION,
        run={
            "pipeline": PENGUIN_PIPELINE,
            "experimentName": PENGUIN_EXPERIMENT,
            "runtimeParameters": [
                {"name": "TRAINING_RUNS", "value": "100"},
                {
                    "name": "EXAMPLES",
                    "valueFrom": {
                        "runConfigurationRef": {
                            "name": EXAMPLE_GENERATOR_RUN_CONFIGURATION,
                            "outputArtifact": "examples",
                        }
                    },
                },
            ],
            "artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model:0[pushed == 1]"}],
        },
        triggers={"runConfigurations": [EXAMPLE_GENERATOR_RUN_CONFIGURATION], "onChange": ["pipeline"]},
    )


def _run_configuration(
    namespace: str, name: str, *, run: dict[str, Any], triggers: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RunConfiguration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"run": run, "triggers": triggers},
    }


def pipeline_resources(namespace: str) -> list[dict[str, Any]]:
    """The example Pipelines and Experiment, and the ConfigMap one of them is compiled from."""
    generator = (PIPELINES_DIR / "example_generator.yaml").read_text()
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": EXAMPLE_PIPELINES_CONFIG_MAP, "namespace": namespace},
            "data": {"example_generator.yaml": generator},
        },
        _resource(
            namespace,
            "Pipeline",
            PENGUIN_PIPELINE,
            {
                "compiled": {
                    "version": PENGUIN_VERSION,
                    "pipelineSpec": (PIPELINES_DIR / "penguin_pipeline.yaml").read_text(),
                }
            },
        ),
        _resource(
            namespace,
            "Pipeline",
            EXAMPLE_GENERATOR,
            {
                "compiled": {
                    "version": EXAMPLE_GENERATOR_VERSION,
                    "configMapKeyRef": {
                        "name": EXAMPLE_PIPELINES_CONFIG_MAP,
                        "key": "example_generator.yaml",
                    },
                }
            },
        ),
        _resource(
            namespace,
            "Pipeline",
            TYPED_PARAMETERS,
            {"image": f"{EXAMPLES_IMAGE}:v1", "pipelineFunction": "typed_parameters.typed_parameters"},
        ),
        _resource(
            namespace, "Experiment", PENGUIN_EXPERIMENT, {"description": "The penguin example's runs."}
        ),
    ]


def compiler_account(namespace: str) -> list[dict[str, Any]]:
    """The compile Jobs' ServiceAccount, allowed to create ConfigMaps (docs/pipelines.md)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": COMPILER_ACCOUNT, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": COMPILER_ACCOUNT, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": COMPILER_ACCOUNT, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": COMPILER_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": COMPILER_ACCOUNT, "namespace": namespace}],
        },
    ]


def _resource(namespace: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def load_cluster_examples(api_client: kubernetes.client.ApiClient, namespace: str = "default") -> None:
    """Creates the example resources that do not exist yet; the operator does the rest."""
    for obj in [
        *compiler_account(namespace),
        *pipeline_resources(namespace),
        example_generator_run_configuration(namespace),
        penguin_run_configuration(namespace),
    ]:
        _create_unless_exists(api_client, namespace, obj)


def _create_unless_exists(
    api_client: kubernetes.client.ApiClient, namespace: str, obj: dict[str, Any]
) -> None:
    try:
        if obj["apiVersion"].startswith(GROUP):
            kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(
                GROUP, VERSION, namespace, f"{obj['kind'].lower()}s", obj
            )
        else:
            kubernetes.utils.create_from_dict(api_client, obj, namespace=namespace)
    except kubernetes.client.ApiException as error:
        if error.status != 409:
            raise
    except kubernetes.utils.FailToCreateError as error:
        if any(e.status != 409 for e in error.api_exceptions):
            raise
