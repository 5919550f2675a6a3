"""Operator configuration: one YAML file, every key overridable by flag and environment variable.

The configuration is a tree of frozen dataclasses (:class:`Config`). Each leaf field carries
its own metadata (:func:`setting`): the YAML key, a parser that validates and converts, a
default and a description. Everything else is derived from that one declaration:

* the dotted key (``events.nats.url``) and the list of all keys (:data:`KEYS`);
* the flag (``--events-nats-url``) and the environment variable (``KFP_OPERATOR_EVENTS_NATS_URL``);
* the reference documentation (:func:`reference_markdown`) and the commented example file
  ``controller/config.example.yaml`` (:func:`example_yaml`; a test keeps it in step).

Precedence: flag > environment variable > file > default. Values from flags and the
environment are strings; lists are comma-separated there. Values are parsed and checked by
``controller.configvalues``; unknown keys in the file are errors. Invalid values stop start-up
with a :class:`ConfigError` naming the key, e.g.
``invalid configuration: runCompletionTTL: "abc" is not a duration``.

**Adding a key**: add a field with ``field(default=..., metadata=setting(...))`` to the right
dataclass below (or a new section dataclass with ``metadata=section("name")``), then
regenerate the example file with ``python -m controller.config --example >
controller/config.example.yaml``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.configvalues import (
    InvalidValue,
    Parser,
    format_duration,
    parse_bind_address,
    parse_bool,
    parse_dns_label,
    parse_duration,
    parse_enum,
    parse_float,
    parse_int,
    parse_str,
    parse_str_list,
    parse_url,
)

ENV_PREFIX = "KFP_OPERATOR_"


class ConfigError(ValueError):
    """Invalid configuration; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"invalid configuration: {key}: {problem}")
        self.key = key
        self.problem = problem


# ---- declarations -------------------------------------------------------------------------------


def setting(key: str, parse: Parser, doc: str) -> dict[str, Any]:
    """Field metadata for one configuration key (its YAML name, parser and description)."""
    return {"key": key, "parse": parse, "doc": doc}


def section(key: str) -> dict[str, Any]:
    """Field metadata for a nested section (a dataclass of keys)."""
    return {"key": key, "section": True}


@dataclass(frozen=True)
class KfpConfig:
    endpoint: str = field(
        default="http://ml-pipeline.kubeflow:8888",
        metadata=setting("endpoint", parse_url("http", "https"), "Base URL of the KFP API server."),
    )
    token_path: str = field(
        default="",
        metadata=setting(
            "tokenPath",
            parse_str,
            "File holding a (projected service account) token sent to KFP as a bearer token; "
            "empty sends none. Re-read when it changes.",
        ),
    )
    multi_user: bool = field(
        default=False,
        metadata=setting(
            "multiUser", parse_bool, "Whether KFP runs in multi-user mode (namespaced resources)."
        ),
    )


@dataclass(frozen=True)
class MlmdConfig:
    host: str = field(
        default="metadata-grpc-service.kubeflow",
        metadata=setting("host", parse_str, "Host of the ML Metadata gRPC service."),
    )
    port: int = field(
        default=8080, metadata=setting("port", parse_int(1, 65535), "Port of the ML Metadata gRPC service.")
    )


@dataclass(frozen=True)
class NatsConfig:
    url: str = field(
        default="",
        metadata=setting(
            "url",
            parse_url("nats", "tls", "ws", "wss", optional=True),
            "NATS server for run-completion events; empty disables the NATS sink.",
        ),
    )
    subject: str = field(
        default="events", metadata=setting("subject", parse_str, "NATS subject run-completion events go to.")
    )
    jetstream: bool = field(
        default=False,
        metadata=setting(
            "jetstream", parse_bool, "Publish through JetStream and wait for the acknowledgement."
        ),
    )


@dataclass(frozen=True)
class HttpSinksConfig:
    sinks: tuple[str, ...] = field(
        default=(),
        metadata=setting(
            "sinks",
            parse_url("http", "https", each=True),
            "CloudEvents HTTP endpoints run-completion events are POSTed to (comma-separated in "
            "flags and environment variables).",
        ),
    )


@dataclass(frozen=True)
class EventsConfig:
    nats: NatsConfig = field(default_factory=NatsConfig, metadata=section("nats"))
    http: HttpSinksConfig = field(default_factory=HttpSinksConfig, metadata=section("http"))


@dataclass(frozen=True)
class LeaderElectionConfig:
    enabled: bool = field(
        default=True,
        metadata=setting(
            "enabled", parse_bool, "Run reconcilers only in the instance holding the Lease (others stand by)."
        ),
    )
    namespace: str = field(
        default="",
        metadata=setting(
            "namespace",
            parse_dns_label(optional=True),
            "Namespace of the Lease; empty means the pod's own namespace (required outside a cluster).",
        ),
    )
    name: str = field(
        default="kfp-operator-leader",
        metadata=setting("name", parse_dns_label(), "Name of the coordination.k8s.io/v1 Lease."),
    )
    identity: str = field(
        default="",
        metadata=setting(
            "identity", parse_str, "This instance's holder identity; empty means <hostname>_<random UUID>."
        ),
    )
    lease_duration: float = field(
        default=15.0,
        metadata=setting(
            "leaseDuration",
            parse_duration(minimum=1.0),
            "How long standbys wait after the last observed renewal before taking over.",
        ),
    )
    renew_deadline: float = field(
        default=10.0,
        metadata=setting(
            "renewDeadline",
            parse_duration(minimum=0.1),
            "How long the leader keeps trying to renew before it gives up leading (and exits).",
        ),
    )
    retry_period: float = field(
        default=2.0,
        metadata=setting(
            "retryPeriod",
            parse_duration(minimum=0.05),
            "How often candidates try to acquire and leaders renew.",
        ),
    )


@dataclass(frozen=True)
class MetricsConfig:
    bind_address: str = field(
        default=":8080",
        metadata=setting(
            "bindAddress", parse_bind_address, "Address of the Prometheus /metrics endpoint; 0 disables it."
        ),
    )


@dataclass(frozen=True)
class HealthConfig:
    bind_address: str = field(
        default=":8081",
        metadata=setting(
            "bindAddress", parse_bind_address, "Address of the /healthz and /readyz probes; 0 disables them."
        ),
    )


@dataclass(frozen=True)
class LogConfig:
    level: str = field(
        default="info",
        metadata=setting("level", parse_enum("debug", "info", "warning", "error"), "Minimum log level."),
    )
    format: str = field(
        default="",
        metadata=setting(
            "format",
            parse_enum("", "json", "console"),
            "json, or console (human-readable); empty means console on a terminal, json otherwise.",
        ),
    )


@dataclass(frozen=True)
class KubeConfig:
    # No client-side limit by default, as controller-runtime since v0.21: the number of requests
    # in flight is already bounded by the workers, and the API server's Priority and Fairness
    # throttles fairly across clients; a fixed client-side rate made bursts of Runs wait on it.
    qps: float = field(
        default=0.0,
        metadata=setting(
            "qps",
            parse_float,
            "Client-side limit on Kubernetes API requests per second (token bucket refill rate); 0 or "
            "less (the default) leaves throttling to the API server's Priority and Fairness.",
        ),
    )
    burst: int = field(
        default=30,
        metadata=setting(
            "burst", parse_int(1), "Requests allowed at once above kube.qps (token bucket size)."
        ),
    )
    timeout: float = field(
        default=30.0,
        metadata=setting(
            "timeout",
            parse_duration(minimum=0.1),
            "Timeout of a single Kubernetes API request (not watches).",
        ),
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration. Durations are in seconds (``float``); ``None`` means unset."""

    provider: str = field(
        default="kfp",
        metadata=setting(
            "provider",
            parse_dns_label(),
            "Provider name: the prefix of status.providerId and the event source.",
        ),
    )
    default_experiment: str = field(
        default="Default",
        metadata=setting("defaultExperiment", parse_str, "KFP experiment of Runs that do not name one."),
    )
    run_completion_ttl: float | None = field(
        default=None,
        metadata=setting(
            "runCompletionTTL",
            parse_duration(optional=True),
            "Delete completed Runs this long after completion; 0 or negative means right away, "
            "unset means never.",
        ),
    )
    poll_interval: float = field(
        default=10.0,
        metadata=setting(
            "pollInterval",
            parse_duration(minimum=0.1),
            "How often KFP is polled in bulk for run state changes.",
        ),
    )
    safety_check_interval: float = field(
        default=600.0,
        metadata=setting(
            "safetyCheckInterval",
            parse_duration(minimum=1.0),
            "How often each active Run is re-checked individually against KFP, in addition to the bulk poll.",
        ),
    )
    dependency_recheck_interval: float = field(
        default=30.0,
        metadata=setting(
            "dependencyRecheckInterval",
            parse_duration(minimum=0.1),
            "How often a Run waiting for a pipeline, version or experiment to appear in KFP looks again.",
        ),
    )
    deletion_timeout: float = field(
        default=600.0,
        metadata=setting(
            "deletionTimeout",
            parse_duration(minimum=0.0),
            "How long deleting a Run keeps trying to terminate its active KFP run before the Run is "
            "released anyway.",
        ),
    )
    workers: int = field(
        default=4, metadata=setting("workers", parse_int(1, 1000), "Concurrent reconciles per controller.")
    )
    watch_namespaces: tuple[str, ...] = field(
        default=(),
        metadata=setting(
            "watchNamespaces",
            parse_str_list,
            "Namespaces whose Runs are handled (comma-separated in flags and environment variables); "
            "empty means all.",
        ),
    )
    resync_period: float = field(
        default=36000.0,
        metadata=setting(
            "resyncPeriod",
            parse_duration(minimum=0.0),
            "How often every cached object is re-queued for reconciliation even without a change; "
            "0 disables.",
        ),
    )
    shutdown_timeout: float = field(
        default=30.0,
        metadata=setting(
            "shutdownTimeout",
            parse_duration(minimum=0.0),
            "How long in-flight reconciles may take to finish on shutdown.",
        ),
    )
    kfp: KfpConfig = field(default_factory=KfpConfig, metadata=section("kfp"))
    mlmd: MlmdConfig = field(default_factory=MlmdConfig, metadata=section("mlmd"))
    events: EventsConfig = field(default_factory=EventsConfig, metadata=section("events"))
    leader_election: LeaderElectionConfig = field(
        default_factory=LeaderElectionConfig, metadata=section("leaderElection")
    )
    metrics: MetricsConfig = field(default_factory=MetricsConfig, metadata=section("metrics"))
    health: HealthConfig = field(default_factory=HealthConfig, metadata=section("health"))
    log: LogConfig = field(default_factory=LogConfig, metadata=section("log"))
    kube: KubeConfig = field(default_factory=KubeConfig, metadata=section("kube"))

    def value(self, key: str) -> Any:
        """Returns the value of a dotted key (``"events.nats.url"``)."""
        node: Any = self
        for attr in _SPECS_BY_KEY[key].attr_path:
            node = getattr(node, attr)
        return node


# ---- the key list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySpec:
    """One configuration key, as derived from the dataclass declarations."""

    key: str
    attr_path: tuple[str, ...]
    parse: Parser
    default: Any
    doc: str

    @property
    def flag(self) -> str:
        return "--" + "-".join(_kebab(part) for part in self.key.split("."))

    @property
    def env(self) -> str:
        return ENV_PREFIX + "_".join(_kebab(part) for part in self.key.split(".")).replace("-", "_").upper()


def _kebab(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)
    return name.lower()


def _walk(cls: type, prefix: tuple[str, ...] = (), attrs: tuple[str, ...] = ()) -> Iterator[KeySpec]:
    defaults = cls()
    for f in dataclasses.fields(cls):
        key = f.metadata["key"]
        if f.metadata.get("section"):
            yield from _walk(type(getattr(defaults, f.name)), (*prefix, key), (*attrs, f.name))
        else:
            yield KeySpec(
                key=".".join((*prefix, key)),
                attr_path=(*attrs, f.name),
                parse=f.metadata["parse"],
                default=getattr(defaults, f.name),
                doc=f.metadata["doc"],
            )


KEYS: tuple[KeySpec, ...] = tuple(_walk(Config))
_SPECS_BY_KEY = {spec.key: spec for spec in KEYS}


def key_names() -> list[str]:
    """Every configuration key, dotted, in declaration order."""
    return [spec.key for spec in KEYS]


# ---- loading ------------------------------------------------------------------------------------


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for name, value in data.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, Mapping) and key not in _SPECS_BY_KEY:
                if not any(k.startswith(key + ".") for k in _SPECS_BY_KEY):
                    raise ConfigError(key, "unknown key")
                yield from _flatten(value, key)
            else:
                yield key, value
    else:
        raise ConfigError(prefix or "(file)", "must be a mapping")


def read_file(path: str | Path) -> dict[str, Any]:
    """Reads a configuration file into ``{dotted key: raw value}``; unknown keys are errors."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError("--config", f"cannot read {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError("--config", f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    raw = dict(_flatten(data))
    for key in raw:
        if key not in _SPECS_BY_KEY:
            raise ConfigError(key, "unknown key")
    return raw


def load(
    file_values: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flag_values: Mapping[str, Any] | None = None,
) -> Config:
    """Builds and validates a :class:`Config` from the three sources (flag > env > file > default)."""
    environ = environ if environ is not None else {}
    file_values = file_values or {}
    flag_values = flag_values or {}
    values: dict[tuple[str, ...], Any] = {}
    for spec in KEYS:
        if spec.key in flag_values and flag_values[spec.key] is not None:
            raw, source = flag_values[spec.key], spec.flag
        elif spec.env in environ:
            raw, source = environ[spec.env], spec.env
        elif spec.key in file_values:
            raw, source = file_values[spec.key], spec.key
        else:
            values[spec.attr_path] = spec.default
            continue
        try:
            values[spec.attr_path] = spec.parse(raw)
        except InvalidValue as err:
            suffix = "" if source == spec.key else f" (from {source})"
            raise ConfigError(spec.key, f"{err}{suffix}") from None
    config = _build(Config, values)
    validate(config)
    return config


def _build(cls: type, values: Mapping[tuple[str, ...], Any], prefix: tuple[str, ...] = ()) -> Any:
    kwargs = {}
    defaults = cls()
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        if f.metadata.get("section"):
            kwargs[f.name] = _build(type(getattr(defaults, f.name)), values, path)
        else:
            kwargs[f.name] = values[path]
    return cls(**kwargs)


def validate(config: Config) -> None:
    """Checks rules that involve more than one key."""
    le = config.leader_election
    if le.renew_deadline >= le.lease_duration:
        raise ConfigError(
            "leaderElection.renewDeadline",
            f"{format_duration(le.renew_deadline)} must be shorter than leaderElection.leaseDuration "
            f"({format_duration(le.lease_duration)})",
        )
    if le.renew_deadline <= 1.2 * le.retry_period:
        raise ConfigError(
            "leaderElection.renewDeadline",
            f"{format_duration(le.renew_deadline)} must be longer than 1.2 x leaderElection.retryPeriod "
            f"({format_duration(le.retry_period)})",
        )


# ---- command line ----------------------------------------------------------------------------------


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per key (strings; booleans may be given without a value, meaning true)."""
    group = parser.add_argument_group("configuration (overrides the file and the environment)")
    for spec in KEYS:
        kwargs: dict[str, Any] = {"dest": "cfg:" + spec.key, "default": None, "metavar": "VALUE"}
        if isinstance(spec.default, bool):
            kwargs.update(nargs="?", const="true")
        group.add_argument(spec.flag, help=f"{spec.doc} [{spec.key}; env {spec.env}]", **kwargs)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    return {name[len("cfg:") :]: value for name, value in vars(args).items() if name.startswith("cfg:")}


# ---- documentation -----------------------------------------------------------------------------------


def _is_duration(spec: KeySpec) -> bool:
    # Durations are shown and written in Go syntax, not as seconds.
    return getattr(spec.parse, "is_duration", False)


def _format_default(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[]" if not value else ", ".join(value)
    return "" if value is None else str(value)


def _display_default(spec: KeySpec) -> str:
    if _is_duration(spec):
        return f"`{format_duration(spec.default)}`" if spec.default is not None else "unset"
    shown = _format_default(spec.default)
    return f"`{shown}`" if shown else '`""`'


def reference_markdown() -> str:
    """A Markdown table of every key: flag, environment variable, default and description."""
    lines = [
        "| Key | Flag | Environment variable | Default | Description |",
        "|---|---|---|---|---|",
    ]
    for spec in KEYS:
        default = _display_default(spec)
        lines.append(f"| `{spec.key}` | `{spec.flag}` | `{spec.env}` | {default} | {spec.doc} |")
    return "\n".join(lines) + "\n"


def example_yaml() -> str:
    """A commented YAML file setting every key to its default."""
    out = [
        "# kfp-operator configuration (every key with its default).",
        "# Each key can be overridden by a flag or an environment variable (see the comments);",
        "# precedence: flag > environment variable > this file > default.",
        "# Generated by: python -m controller.config --example",
    ]
    emitted: set[tuple[str, ...]] = set()
    for spec in KEYS:
        parts = spec.key.split(".")
        for depth in range(len(parts) - 1):
            if tuple(parts[: depth + 1]) not in emitted:
                emitted.add(tuple(parts[: depth + 1]))
                out.append("  " * depth + f"{parts[depth]}:")
        indent = "  " * (len(parts) - 1)
        out.append(f"{indent}# {spec.doc}")
        out.append(f"{indent}# flag {spec.flag}, env {spec.env}")
        out.append(f"{indent}{parts[-1]}: {_yaml_value(spec)}")
    return "\n".join(out) + "\n"


def _yaml_value(spec: KeySpec) -> str:
    value = spec.default
    if _is_duration(spec):
        return json.dumps(format_duration(value)) if value is not None else '""'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[]" if not value else json.dumps(list(value))
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m controller.config", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--example", action="store_true", help="print a commented example configuration file")
    what.add_argument("--markdown", action="store_true", help="print the key reference as a Markdown table")
    args = parser.parse_args(argv)
    sys.stdout.write(example_yaml() if args.example else reference_markdown())


if __name__ == "__main__":
    main()
