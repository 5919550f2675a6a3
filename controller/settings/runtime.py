"""The controller runtime's own settings, which a program's settings class extends.

``RuntimeSettings`` holds what the manager, the controllers and the Kubernetes client read:
workers, watched namespaces, resync and shutdown, leader election, the metrics and health
endpoints, logging, and client-side limits. Durations are seconds (``float``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.settings.loading import ConfigError
from controller.settings.schema import section, setting
from controller.settings.values import (
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
)


@dataclass(frozen=True)
class LeaderElectionSettings:
    enabled: bool = setting(
        "enabled",
        parse_bool,
        "Run reconcilers only in the instance holding the Lease (others stand by).",
        default=True,
        flag_aliases=("--leader-elect",),  # controller-runtime's name
    )
    namespace: str = setting(
        "namespace",
        parse_dns_label(optional=True),
        "Namespace of the Lease; empty means the pod's own namespace (required outside a cluster).",
        default="",
    )
    name: str = setting(
        "name", parse_dns_label(), "Name of the coordination.k8s.io/v1 Lease.", default="kfp-operator-leader"
    )
    identity: str = setting(
        "identity",
        parse_str,
        "This instance's holder identity; empty means <hostname>_<random UUID>.",
        default="",
    )
    lease_duration: float = setting(
        "leaseDuration",
        parse_duration(minimum=1.0),
        "How long standbys wait after the last observed renewal before taking over.",
        default=15.0,
    )
    renew_deadline: float = setting(
        "renewDeadline",
        parse_duration(minimum=0.1),
        "How long the leader keeps trying to renew before it gives up leading (and exits).",
        default=10.0,
    )
    retry_period: float = setting(
        "retryPeriod",
        parse_duration(minimum=0.05),
        "How often candidates try to acquire and leaders renew.",
        default=2.0,
    )


@dataclass(frozen=True)
class MetricsSettings:
    bind_address: str = setting(
        "bindAddress",
        parse_bind_address,
        "Address of the Prometheus /metrics endpoint; 0 disables it.",
        default=":8080",
        flag_aliases=("--metrics-bind-address",),
    )
    # Off by default so a local operator (make dev, the tests) serves plain HTTP; the Helm chart
    # turns it on, as kubebuilder's scaffold does for controller-runtime's metrics server.
    secure: bool = setting(
        "secure",
        parse_bool,
        "Serve /metrics over HTTPS, only to clients whose bearer token the API server authenticates "
        "(TokenReview) and allows to get the non-resource URL /metrics (SubjectAccessReview); false "
        "serves plain HTTP to anyone.",
        default=False,
    )
    cert_dir: str = setting(
        "certDir",
        parse_str,
        "Directory with the HTTPS certificate and key of /metrics (tls.crt and tls.key, re-read when "
        "they change); empty means a self-signed certificate generated at start-up.",
        default="",
    )


@dataclass(frozen=True)
class HealthSettings:
    bind_address: str = setting(
        "bindAddress",
        parse_bind_address,
        "Address of the /healthz and /readyz probes; 0 disables them.",
        default=":8081",
        flag_aliases=("--health-probe-bind-address",),
    )


def parse_log_level(value: Any) -> str:
    """A level name, or a zap verbosity number (``--zap-log-level=2`` in controller-runtime)."""
    text = parse_str(value).strip().lower()
    if text.lstrip("-").isdigit():
        return "debug" if int(text) > 0 else "info"
    return str(parse_enum("debug", "info", "warning", "error")(text))


@dataclass(frozen=True)
class LogSettings:
    level: str = setting(
        "level",
        parse_log_level,
        "Minimum log level: debug, info, warning or error (or a zap verbosity, as "
        "controller-runtime's --zap-log-level takes it: 1 or more means debug).",
        default="info",
        flag_aliases=("--zap-log-level",),
    )
    format: str = setting(
        "format",
        parse_enum("", "json", "console"),
        "json, or console (human-readable); empty means console on a terminal, json otherwise.",
        default="",
    )


@dataclass(frozen=True)
class KubeSettings:
    # No client-side limit by default, as controller-runtime since v0.21: the number of requests
    # in flight is already bounded by the workers, and the API server's Priority and Fairness
    # throttles fairly across clients; a fixed client-side rate made bursts of Runs wait on it.
    qps: float = setting(
        "qps",
        parse_float,
        "Client-side limit on Kubernetes API requests per second (token bucket refill rate), for "
        "each of the operator's clients: the reconcilers', the event recorder's, leader "
        "election's and the metrics endpoint's reviews'; 0 or less (the default) leaves "
        "throttling to the API server's Priority and Fairness.",
        default=0.0,
    )
    burst: int = setting(
        "burst", parse_int(1), "Requests allowed at once above kube.qps (token bucket size).", default=30
    )
    timeout: float = setting(
        "timeout",
        parse_duration(minimum=0.1),
        "Timeout of a single Kubernetes API request (not watches).",
        default=30.0,
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """What the runtime itself reads; a program's settings class adds its own keys to these."""

    workers: int = setting("workers", parse_int(1, 1000), "Concurrent reconciles per controller.", default=8)
    watch_namespaces: tuple[str, ...] = setting(
        "watchNamespaces",
        parse_str_list,
        "Namespaces whose objects are handled (comma-separated in flags and environment variables); "
        "empty means all.",
        default=(),
    )
    resync_period: float = setting(
        "resyncPeriod",
        parse_duration(minimum=0.0),
        "How often every cached object is re-queued for reconciliation even without a change; 0 disables.",
        default=36000.0,
    )
    shutdown_timeout: float = setting(
        "shutdownTimeout",
        parse_duration(minimum=0.0),
        "How long in-flight reconciles may take to finish on shutdown.",
        default=30.0,
    )
    leader_election: LeaderElectionSettings = section("leaderElection", LeaderElectionSettings)
    metrics: MetricsSettings = section("metrics", MetricsSettings)
    health: HealthSettings = section("health", HealthSettings)
    log: LogSettings = section("log", LogSettings)
    kube: KubeSettings = section("kube", KubeSettings)

    def validate(self) -> None:
        """Checks the rules that involve more than one key."""
        le = self.leader_election
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
