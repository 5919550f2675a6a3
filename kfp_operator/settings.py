"""The operator's configuration: the runtime's settings plus KFP, ML Metadata, events and Run policy.

One YAML file (``--config``, a ConfigMap in the chart); every key can also be set by a flag
(``--kfp-endpoint``) or an environment variable (``KFP_OPERATOR_KFP_ENDPOINT``). The declarations
below are the single source of the key list, the flags, the environment variables,
``docs/configuration.md`` and ``kfp_operator/config.example.yaml``; regenerate the last two with
``python -m kfp_operator.settings --markdown`` and ``--example`` (tests keep them in step).

**Adding a key**: add a field with ``setting(...)`` to the right class below (or a new section
class with ``section(...)``), then regenerate the two files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.settings import docs, loading
from controller.settings.loading import ConfigError
from controller.settings.runtime import RuntimeSettings
from controller.settings.schema import KeySpec, keys_of, section, setting
from controller.settings.values import (
    InvalidValue,
    parse_bool,
    parse_dns_label,
    parse_duration,
    parse_enum,
    parse_int,
    parse_str,
    parse_url,
    url_origin,
)

__all__ = [
    "ENV_PREFIX",
    "KEYS",
    "Config",
    "ConfigError",
    "add_flags",
    "example_yaml",
    "flag_values",
    "key_names",
    "load",
    "read_file",
    "reference_markdown",
]

ENV_PREFIX = "KFP_OPERATOR_"
# The NATS sink's name in status, metrics and Events.
NATS_SINK = "nats"
_SINK_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SINK_FIELDS = {
    "name": "name",
    "url": "url",
    "urlFile": "url_file",
    "headersFile": "headers_file",
    "caFile": "ca_file",
}


def parse_http_sinks(value: Any) -> tuple[HttpSinkConfig, ...]:
    """HTTP sinks: a list of entries ``{name, url | urlFile, headersFile, caFile}`` or bare URLs.

    In flags and environment variables the list is JSON, or comma-separated bare URLs. Errors
    never show a URL with its user information or query.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [u for u in text.split(",") if u.strip()]
        except ValueError:
            raise InvalidValue("is not a JSON list of sinks") from None
    if not isinstance(value, list):
        raise InvalidValue("is not a list of sinks")
    sinks = tuple(_http_sink(item, index) for index, item in enumerate(value))
    names = [sink.name for sink in sinks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidValue(
            f"sink names must be unique; repeated: {', '.join(duplicates)}"
            " (a bare URL is named by its scheme, host and port: name sinks on one host)"
        )
    return sinks


def _http_sink(item: Any, index: int) -> HttpSinkConfig:
    where = f"sink {index}"
    if isinstance(item, str):
        url = parse_url("http", "https")(item)
        return HttpSinkConfig(name=url_origin(url), url=url)
    if not isinstance(item, dict):
        raise InvalidValue(f"{where} is neither a URL nor a mapping")
    unknown = sorted(set(item) - set(_SINK_FIELDS))
    if unknown:
        raise InvalidValue(f"{where} has unknown field(s) {', '.join(unknown)}")
    fields = {_SINK_FIELDS[key]: parse_str(raw).strip() for key, raw in item.items()}
    name = fields.get("name", "")
    if not _SINK_NAME.fullmatch(name) or name == NATS_SINK or len(name) > 63:
        raise InvalidValue(
            f"{where}: name {name!r} is not a name (letters, digits, -, _, .; not {NATS_SINK!r})"
        )
    if bool(fields.get("url")) == bool(fields.get("url_file")):
        raise InvalidValue(f"sink {name}: exactly one of url and urlFile must be set")
    if fields.get("url"):
        fields["url"] = parse_url("http", "https")(fields["url"])
    return HttpSinkConfig(**fields)


@dataclass(frozen=True)
class KfpConfig:
    endpoint: str = setting(
        "endpoint",
        parse_url("http", "https", credentials="kfp.tokenPath"),
        "Base URL of the KFP API server, without credentials (see tokenPath).",
        default="http://ml-pipeline.kubeflow:8888",
    )
    token_path: str = setting(
        "tokenPath",
        parse_str,
        "File holding a (projected service account) token sent to KFP as a bearer token; "
        "empty sends none. Re-read when it changes.",
        default="",
    )
    multi_user: bool = setting(
        "multiUser",
        parse_bool,
        "Whether KFP runs in multi-user mode (namespaced resources).",
        default=False,
    )
    ca_file: str = setting(
        "caFile",
        parse_str,
        "The CA bundle an https endpoint's certificate is checked against; empty uses the system's.",
        default="",
    )
    cert_file: str = setting(
        "certFile", parse_str, "A client certificate to present to KFP (with kfp.keyFile).", default=""
    )
    key_file: str = setting("keyFile", parse_str, "The key of kfp.certFile.", default="")


@dataclass(frozen=True)
class MlmdConfig:
    host: str = setting(
        "host", parse_str, "Host of the ML Metadata gRPC service.", default="metadata-grpc-service.kubeflow"
    )
    port: int = setting("port", parse_int(1, 65535), "Port of the ML Metadata gRPC service.", default=8080)
    tls: bool = setting("tls", parse_bool, "Connect to ML Metadata with TLS.", default=False)
    ca_file: str = setting(
        "caFile", parse_str, "The CA bundle ML Metadata's certificate is checked against (TLS).", default=""
    )
    cert_file: str = setting(
        "certFile",
        parse_str,
        "A client certificate to present to ML Metadata (with mlmd.keyFile).",
        default="",
    )
    key_file: str = setting("keyFile", parse_str, "The key of mlmd.certFile.", default="")


@dataclass(frozen=True)
class NatsConfig:
    url: str = setting(
        "url",
        parse_url("nats", "tls", "ws", "wss", optional=True),
        "NATS server for run-completion events; empty disables the NATS sink.",
        default="",
    )
    subject: str = setting(
        "subject", parse_str, "NATS subject run-completion events go to.", default="events"
    )
    jetstream: bool = setting(
        "jetstream", parse_bool, "Publish through JetStream and wait for the acknowledgement.", default=False
    )
    creds_file: str = setting(
        "credsFile", parse_str, "A NATS credentials file (JWT and NKey seed) to connect with.", default=""
    )
    nkey_seed_file: str = setting(
        "nkeySeedFile", parse_str, "A file holding an NKey seed to authenticate with.", default=""
    )
    token_file: str = setting(
        "tokenFile", parse_str, "A file holding a token to authenticate with.", default=""
    )
    ca_file: str = setting(
        "caFile", parse_str, "The CA bundle the server's certificate is checked against (TLS).", default=""
    )


@dataclass(frozen=True)
class HttpSinkConfig:
    """One CloudEvents HTTP sink. Its ``name`` is how status, metrics, Events and logs refer to it."""

    name: str
    url: str = ""
    url_file: str = ""  # a file holding the URL (from a Secret), read at each delivery
    headers_file: str = ""  # a file of "Name: value" lines (from a Secret), read at each delivery
    ca_file: str = ""  # the CA bundle the sink's certificate is checked against; empty: the system's


@dataclass(frozen=True)
class HttpSinksConfig:
    sinks: tuple[HttpSinkConfig, ...] = setting(
        "sinks",
        parse_http_sinks,
        "CloudEvents HTTP sinks run-completion events are POSTed to: a list of {name, url or urlFile, "
        "headersFile, caFile} (JSON in flags and environment variables). A bare URL is a sink named "
        "by its scheme, host and port; a URL with a secret belongs in urlFile.",
        default=(),
    )


@dataclass(frozen=True)
class EventsConfig:
    nats: NatsConfig = section("nats", NatsConfig)
    http: HttpSinksConfig = section("http", HttpSinksConfig)


@dataclass(frozen=True)
class PipelinesConfig:
    compiler_image: str = setting(
        "compilerImage",
        parse_str,
        "Image of the init container that puts the pipeline compiler into a Pipeline's compile Job: "
        "the operator's own image. Pipelines built from an image fail with CompilerNotConfigured "
        "while it is empty.",
        default="",
    )
    compiler_service_account: str = setting(
        "compilerServiceAccount",
        parse_dns_label(),
        "ServiceAccount that compile Jobs run as, in the Pipeline's namespace; it must be allowed to "
        "create ConfigMaps there (the compiler hands the compiled pipeline back in one).",
        default="kfp-pipeline-compiler",
    )
    compile_timeout: float = setting(
        "compileTimeout",
        parse_duration(minimum=1.0),
        "How long a compile Job may run; a Job still running after that is deleted and the Pipeline "
        "fails with CompileTimedOut.",
        default=600.0,
    )
    version_retention: int = setting(
        "versionRetention",
        parse_int(0),
        "How many of the versions it uploaded the operator keeps per KFP pipeline, newest first; "
        "older ones are deleted unless a Run or RunConfiguration still uses them. 0 keeps all.",
        default=0,
    )


@dataclass(frozen=True)
class Config(RuntimeSettings):
    """The whole configuration. Durations are in seconds (``float``); ``None`` means unset."""

    provider: str = setting(
        "provider",
        parse_dns_label(),
        "Provider name: the prefix of status.providerId and the event source.",
        default="kfp",
    )
    default_experiment: str = setting(
        "defaultExperiment", parse_str, "KFP experiment of Runs that do not name one.", default="Default"
    )
    run_completion_ttl: float | None = setting(
        "runCompletionTTL",
        parse_duration(minimum=0.0, optional=True),
        "Delete completed Runs this long after their KFP run finished; 0 means right after their "
        "event is delivered, unset means never. The annotation "
        "pipelines.kubeflow.org/ttl-after-completion overrides it per Run.",
        default=None,
    )
    poll_interval: float = setting(
        "pollInterval",
        parse_duration(minimum=0.1),
        "How often KFP is polled in bulk for run state changes.",
        default=10.0,
    )
    safety_check_interval: float = setting(
        "safetyCheckInterval",
        parse_duration(minimum=1.0),
        "How often each active Run is re-checked individually against KFP, in addition to the bulk poll; "
        "also how often each Pipeline and Experiment checks that what it made in KFP is still there.",
        default=600.0,
    )
    dependency_recheck_interval: float = setting(
        "dependencyRecheckInterval",
        parse_duration(minimum=0.1),
        "How often a Run waiting for a pipeline, version or experiment to appear in KFP looks again.",
        default=30.0,
    )
    deletion_timeout: float = setting(
        "deletionTimeout",
        parse_duration(minimum=0.0),
        "How long a deleted Run is held for what must not be lost (its active KFP run terminated, "
        "its completion recorded, its event delivered, its RunConfiguration updated) before it is "
        "released anyway, with a Warning Event saying what was abandoned.",
        default=600.0,
    )
    allow_cross_namespace_references: bool = setting(
        "allowCrossNamespaceReferences",
        parse_bool,
        "Whether a Run's parameters may take values from a RunConfiguration in another namespace "
        "(valueFrom.runConfigurationRef.name: namespace/name); false confines each namespace to its own.",
        default=True,
    )
    kfp_names: str = setting(
        "kfpNames",
        parse_enum("name", "namespace-name"),
        "How Pipeline and Experiment resources are named in KFP: name (as they are, as the reference "
        "operator up to v0.6 named them) or namespace-name (<namespace>-<name>, as v0.7 and later do; "
        "use it where namespaces may share names).",
        default="name",
    )
    pipelines: PipelinesConfig = section("pipelines", PipelinesConfig)
    kfp: KfpConfig = section("kfp", KfpConfig)
    mlmd: MlmdConfig = section("mlmd", MlmdConfig)
    events: EventsConfig = section("events", EventsConfig)

    def value(self, key: str) -> Any:
        """Returns the value of a dotted key (``"events.nats.url"``)."""
        node: Any = self
        for attr in _SPECS_BY_KEY[key].attr_path:
            node = getattr(node, attr)
        return node


KEYS: tuple[KeySpec, ...] = keys_of(Config, ENV_PREFIX)
_SPECS_BY_KEY = {spec.key: spec for spec in KEYS}
GENERATED_BY = "python -m kfp_operator.settings --example"


def key_names() -> list[str]:
    """Every configuration key, dotted, in documentation order."""
    return [spec.key for spec in KEYS]


def spec(key: str) -> KeySpec:
    return _SPECS_BY_KEY[key]


def read_file(path: str | Path) -> dict[str, Any]:
    return loading.read_file(path, KEYS)


def load(
    file_values: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flag_values: Mapping[str, Any] | None = None,
) -> Config:
    """Builds and validates the configuration (flag > environment variable > file > default)."""
    return loading.load(Config, KEYS, file_values, environ, flag_values)


def add_flags(parser: argparse.ArgumentParser) -> None:
    loading.add_flags(parser, KEYS)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    return loading.flag_values(args)


def reference_markdown() -> str:
    return docs.reference_markdown(KEYS)


def example_yaml() -> str:
    return docs.example_yaml(KEYS, title="kfp-operator configuration", generated_by=GENERATED_BY)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m kfp_operator.settings", description=__doc__.splitlines()[0]
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--example", action="store_true", help="print a commented example configuration file")
    what.add_argument("--markdown", action="store_true", help="print the key reference as a Markdown table")
    args = parser.parse_args(argv)
    sys.stdout.write(example_yaml() if args.example else reference_markdown())


if __name__ == "__main__":
    main()
