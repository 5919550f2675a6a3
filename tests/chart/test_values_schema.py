"""values.schema.json: bad values are refused with a message naming them; documented values are accepted.

The ``config`` section is the operator's configuration file, so its schema must describe exactly the
operator's keys, and values.yaml must hold exactly the operator's defaults.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import yaml

from kfp_operator import settings as operator_config
from tests.chart.chartlib import (
    CHART,
    DOCS,
    PROJECT_ROOT,
    HelmError,
    chart_values,
    config_keys,
    helm,
    leaf_paths,
    render,
    render_text,
)

SCHEMA = json.loads((CHART / "values.schema.json").read_text())

# (values, the message must contain every one of these)
BAD_VALUES: list[tuple[dict[str, Any], list[str]]] = [
    ({"replicaCount": -1}, ["/replicaCount", "minimum: got -1, want 0"]),
    ({"replicaCount": "2"}, ["/replicaCount", "got string, want integer"]),
    ({"replicas": 2}, ["additional properties 'replicas' not allowed"]),
    ({"config": {"pollinterval": "10s"}}, ["/config", "additional properties 'pollinterval' not allowed"]),
    ({"config": {"pollInterval": "10 seconds"}}, ["/config/pollInterval", "'10 seconds' does not match"]),
    ({"config": {"pollInterval": 10}}, ["/config/pollInterval", "got number, want string"]),
    ({"config": {"runCompletionTTL": "1d"}}, ["/config/runCompletionTTL", "'1d' does not match"]),
    (
        {"config": {"leaderElection": {"leaseDuration": "-15s"}}},
        ["/config/leaderElection/leaseDuration", "'-15s'"],
    ),
    (
        {"config": {"log": {"level": "verbose"}}},
        ["/config/log/level", "value must be one of 'debug', 'info'"],
    ),
    ({"config": {"log": {"format": "xml"}}}, ["/config/log/format", "value must be one of"]),
    (
        {"config": {"kfp": {"endpoint": "ml-pipeline.kubeflow:8888"}}},
        ["/config/kfp/endpoint", "'ml-pipeline"],
    ),
    ({"config": {"kfp": {"multiUser": "yes"}}}, ["/config/kfp/multiUser", "got string, want boolean"]),
    ({"config": {"kfp": {"tokenPath": "token"}}}, ["/config/kfp/tokenPath", "'token' does not match"]),
    (
        {"config": {"events": {"nats": {"url": "http://nats:4222"}}}},
        ["/config/events/nats/url", "'http://nats"],
    ),
    ({"config": {"events": {"http": {"sinks": "http://a"}}}}, ["/config/events/http/sinks", "want array"]),
    ({"config": {"events": {"http": {"sinks": ["ftp://a"]}}}}, ["/config/events/http/sinks/0", "'ftp://a'"]),
    ({"config": {"workers": 0}}, ["/config/workers", "minimum: got 0, want 1"]),
    ({"config": {"kfp": {"endpoint": "http://u:pw@kfp:8888"}}}, ["/config/kfp/endpoint", "does not match"]),
    ({"config": {"mlmd": {"port": 70000}}}, ["/config/mlmd/port", "maximum: got 70,000, want 65,535"]),
    ({"config": {"metrics": {"bindAddress": "0"}}}, ["/config/metrics/bindAddress", "'0' does not match"]),
    ({"config": {"watchNamespaces": ["Team_A"]}}, ["/config/watchNamespaces/0", "'Team_A' does not match"]),
    ({"config": {"provider": "KFP"}}, ["/config/provider", "'KFP' does not match"]),
    ({"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy", "value must be one of"]),
    ({"image": {"digest": "latest"}}, ["/image/digest", "'latest' does not match"]),
    ({"kfpToken": {"expirationSeconds": 60}}, ["/kfpToken/expirationSeconds", "minimum: got 60, want 600"]),
    ({"kfpToken": {"enabled": "auto"}}, ["/kfpToken/enabled", "got string, want null or boolean"]),
    ({"serviceMonitor": {"interval": "30 s"}}, ["/serviceMonitor/interval", "'30 s' does not match"]),
    ({"service": {"port": 0}}, ["/service/port", "minimum: got 0, want 1"]),
    ({"livenessProbe": {"periodSeconds": 0}}, ["/livenessProbe/periodSeconds", "minimum: got 0, want 1"]),
    ({"livenessProbe": {"path": "/live"}}, ["/livenessProbe", "additional properties 'path' not allowed"]),
    ({"podAnnotations": {"a": 1}}, ["/podAnnotations/a", "got number, want string"]),
    ({"podDisruptionBudget": {"maxUnavailable": 1}}, ["/podDisruptionBudget/maxUnavailable", "want null"]),
    ({"podDisruptionBudget": {"minAvailable": "half"}}, ["/podDisruptionBudget/minAvailable"]),
    ({"fullnameOverride": "KFP_Operator"}, ["/fullnameOverride", "'KFP_Operator' does not match"]),
    ({"config": {"metrics": {"secure": "yes"}}}, ["/config/metrics/secure", "got string, want boolean"]),
    ({"config": {"metrics": {"certDir": "certs"}}}, ["/config/metrics/certDir", "'certs' does not match"]),
    ({"metricsCertificate": {"secretName": "Metrics_TLS"}}, ["/metricsCertificate/secretName"]),
    (
        {"rbac": {"metricsReaders": [{"kind": "ServiceAccount", "name": "prometheus"}]}},
        ["/rbac/metricsReaders/0", "missing property 'namespace'"],
    ),
    ({"rbac": {"metricsReaders": [{"kind": "Robot", "name": "r"}]}}, ["/rbac/metricsReaders/0/kind"]),
    ({"rbac": {"userRoles": {"aggregate": "yes"}}}, ["/rbac/userRoles/aggregate", "want boolean"]),
    ({"rbac": {"userRoles": {"editLabels": {"a": True}}}}, ["/rbac/userRoles/editLabels/a", "want string"]),
    ({"serviceMonitor": {"tlsConfig": "insecure"}}, ["/serviceMonitor/tlsConfig", "want object"]),
    ({"serviceMonitor": {"tokenSecret": {"name": "scraper"}}}, ["/serviceMonitor/tokenSecret"]),
    ({"serviceMonitor": {"tokenSecret": {"key": "token"}}}, ["/serviceMonitor/tokenSecret"]),
    ({"serviceMonitor": {"tokenSecret": {"secret": "s"}}}, ["/serviceMonitor/tokenSecret", "'secret'"]),
    ({"serviceMonitor": {"tokenSecret": {"name": "Scraper_Token", "key": "t"}}}, ["/tokenSecret/name"]),
    ({"prometheusRule": {"completionLagSeconds": 0}}, ["/prometheusRule/completionLagSeconds"]),
    ({"prometheusRule": {"runsWaitingFor": "30 minutes"}}, ["/prometheusRule/runsWaitingFor"]),
    ({"global": "everything"}, ["/global", "want object"]),
    ({"enabled": "yes"}, ["/enabled", "want boolean"]),
]


@pytest.mark.parametrize(
    ("values", "fragments"), BAD_VALUES, ids=[json.dumps(v, separators=(",", ":")) for v, _ in BAD_VALUES]
)
def test_bad_values_are_refused_with_a_message_that_names_them(
    values: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(HelmError) as refused:
        render(values)

    message = str(refused.value)
    assert "values don't meet the specifications of the schema" in message
    for fragment in fragments:
        assert fragment in message, message


# ---- the configuration section mirrors the operator ----------------------------------------------


def test_schema_config_section_has_exactly_the_operator_keys() -> None:
    assert sorted(leaf_paths(SCHEMA["properties"]["config"])) == sorted(config_keys())


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# Where the chart's default differs from the operator's, on purpose: a cluster's metrics are
# protected, while a local operator (make dev, the tests) serves plain HTTP.
CHART_CHOICES = {"metrics.secure": True}


def test_values_yaml_config_is_the_operator_defaults_but_the_chart_choices() -> None:
    config = flatten(chart_values()["config"])
    operator_defaults = {key: value for key, value in config.items() if key not in CHART_CHOICES}

    assert sorted(config) == sorted(config_keys())
    assert operator_config.load(operator_defaults, environ={}) == operator_config.Config()
    for key, value in CHART_CHOICES.items():
        assert config[key] == value
        assert operator_config.Config().value(key) != value, f"{key} is the operator's default anyway"


# (key, value, accepted): the schema and the operator must agree on each. Values have their YAML
# types here: the operator also takes strings for booleans and lists (from flags and environment
# variables), which the schema refuses in values on purpose.
AGREEMENT: list[tuple[str, Any, bool]] = [
    ("pollInterval", "1h30m", True),
    ("pollInterval", "300ms", True),
    ("pollInterval", "1.5s", True),
    ("pollInterval", "10", False),
    ("pollInterval", "-1s", False),
    ("pollInterval", "", False),
    ("runCompletionTTL", "", True),
    ("runCompletionTTL", "0s", True),
    ("runCompletionTTL", "-1m", False),
    ("runCompletionTTL", "one day", False),
    ("kfp.endpoint", "https://kfp.example.com/pipeline", True),
    ("kfp.endpoint", "http://", False),
    ("kfp.endpoint", "grpc://kfp:8887", False),
    ("events.nats.url", "", True),
    ("events.nats.url", "wss://nats.example", True),
    ("events.nats.url", "nats.example:4222", False),
    ("events.http.sinks", ["https://a.example/x", "http://b:8080"], True),
    ("events.http.sinks", ["mailto:ops@example.com"], False),
    ("metrics.bindAddress", "127.0.0.1:8080", True),
    ("metrics.bindAddress", "[::1]:8080", True),
    ("metrics.bindAddress", "8080", False),
    ("log.level", "warning", True),
    ("log.level", "trace", False),
    ("log.format", "", True),
    ("log.format", "text", False),
    ("provider", "kfp-prod", True),
    ("provider", "kfp_prod", False),
    ("leaderElection.name", "kfp.leader", True),
    ("leaderElection.name", "-leader", False),
    ("watchNamespaces", ["team-a", "b"], True),
    ("watchNamespaces", [""], False),
    ("workers", 1000, True),
    ("workers", 1001, False),
    ("mlmd.port", 0, False),
    ("kube.burst", 0, False),
    ("kfp.multiUser", True, True),
]


def schema_accepts(key: str, value: Any) -> bool:
    *parents, leaf = key.split(".")
    values: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        values = {part: values}
    try:
        render_text({"config": values})
    except HelmError:
        return False
    return True


def operator_accepts(key: str, value: Any) -> bool:
    try:
        operator_config.load({key: value}, environ={})
    except operator_config.ConfigError:
        return False
    return True


@pytest.mark.parametrize(("key", "value", "accepted"), AGREEMENT, ids=[f"{k}={v!r}" for k, v, _ in AGREEMENT])
def test_schema_and_operator_agree(key: str, value: Any, accepted: bool) -> None:
    assert (schema_accepts(key, value), operator_accepts(key, value)) == (accepted, accepted)


# ---- documented examples -------------------------------------------------------------------------------


def documented_values_files() -> list[str]:
    """YAML blocks of the docs that are values files (their first line is ``# values.yaml``)."""
    blocks = []
    for doc in ("installation.md", "chart.md"):
        for block in re.findall(r"```yaml\n(.*?)```", (DOCS / doc).read_text(), flags=re.S):
            if block.startswith("# values.yaml"):
                blocks.append(block)
    return blocks


def documented_helm_commands() -> list[list[str]]:
    """``helm install``/``helm upgrade`` commands of the docs' and the README's shell blocks, as
    argument lists."""
    commands = []
    for doc in (DOCS / "installation.md", DOCS / "chart.md", PROJECT_ROOT / "README.md"):
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", doc.read_text(), flags=re.S):
            for command in block.replace("\\\n", " ").splitlines():
                words = shlex.split(command, comments=True)
                if words[:2] in (["helm", "install"], ["helm", "upgrade"]):
                    commands.append(words)
    return commands


def set_flags(words: list[str]) -> list[str]:
    """The --set/--set-string/--set-json flags of a helm command."""
    flags = []
    for index, word in enumerate(words):
        if word in ("--set", "--set-string", "--set-json"):
            flags += [word, words[index + 1]]
        elif word.startswith(("--set=", "--set-string=", "--set-json=")):
            flags.append(word)
    return flags


def test_docs_have_examples() -> None:
    assert len(documented_values_files()) >= 3
    assert len([c for c in documented_helm_commands() if set_flags(c)]) >= 3


@pytest.mark.parametrize("block", documented_values_files())
def test_documented_values_files_are_accepted(block: str) -> None:
    assert render(yaml.safe_load(block)).deployment


@pytest.mark.parametrize("command", documented_helm_commands(), ids=lambda words: " ".join(words)[:80])
def test_documented_helm_commands_are_accepted(command: list[str]) -> None:
    assert helm("template", "kfp-operator", str(CHART), *set_flags(command))
