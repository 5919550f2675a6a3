"""Configuration: sources and precedence, validation naming the key, the documented key list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from controller.settings.values import parse_go_duration
from kfp_operator import settings as cfg
from kfp_operator.__main__ import build_parser, main
from kfp_operator.settings import Config, ConfigError, HttpSinkConfig

EXAMPLE = Path(cfg.__file__).parent / "config.example.yaml"

# The keys docs/configuration.md documents; the implementation may have more, never fewer.
DOCUMENTED_KEYS = {
    "provider", "defaultExperiment", "runCompletionTTL", "kfp.endpoint", "kfp.tokenPath", "kfp.multiUser",
    "mlmd.host", "mlmd.port", "events.nats.url", "events.nats.subject", "events.nats.jetstream",
    "events.http.sinks", "pollInterval", "workers", "watchNamespaces", "leaderElection.enabled",
    "leaderElection.namespace", "leaderElection.name", "metrics.bindAddress", "health.bindAddress",
    "log.level", "log.format",
}  # fmt: skip

# One invalid value per key (as a YAML file would hold it). Adding a key without a case here
# fails test_every_key_has_a_validation_case.
BAD_VALUES = {
    "provider": "Not A Name!",
    "defaultExperiment": ["a", "list"],
    "runCompletionTTL": "abc",
    "pollInterval": "10",
    "safetyCheckInterval": "0.5s",
    "dependencyRecheckInterval": "1",
    "deletionTimeout": "-1m",
    "allowCrossNamespaceReferences": "sometimes",
    "kfpNames": "namespace/name",
    "pipelines.compilerImage": ["an", "image"],
    "pipelines.compilerServiceAccount": "Not_A_Name",
    "pipelines.compileTimeout": "0s",
    "pipelines.versionRetention": -1,
    "workers": 0,
    "watchNamespaces": 5,
    "resyncPeriod": "-1h",
    "shutdownTimeout": "soon",
    "kfp.endpoint": "ml-pipeline:8888",
    "kfp.tokenPath": {"a": 1},
    "kfp.multiUser": "maybe",
    "kfp.caFile": ["ca.pem"],
    "kfp.certFile": {"file": "tls.crt"},
    "kfp.keyFile": ["tls.key"],
    "mlmd.host": ["h"],
    "mlmd.port": 70000,
    "mlmd.tls": "perhaps",
    "mlmd.caFile": ["ca.pem"],
    "mlmd.certFile": {"file": "tls.crt"},
    "mlmd.keyFile": ["tls.key"],
    "events.nats.url": "http://nats:4222",
    "events.nats.subject": ["events"],
    "events.nats.jetstream": "sometimes",
    "events.nats.credsFile": ["user.creds"],
    "events.nats.nkeySeedFile": {"seed": 1},
    "events.nats.tokenFile": ["token"],
    "events.nats.caFile": ["ca.pem"],
    "events.http.sinks": ["http://ok", "ftp://not-ok"],
    "leaderElection.enabled": "yes please",
    "leaderElection.namespace": "Bad_Namespace",
    "leaderElection.name": "",
    "leaderElection.identity": 3.5j,
    "leaderElection.leaseDuration": "15",
    "leaderElection.renewDeadline": "abc",
    "leaderElection.retryPeriod": "1ns",
    "metrics.bindAddress": "localhost",
    "metrics.secure": "sometimes",
    "metrics.certDir": ["/certs"],
    "health.bindAddress": ":99999",
    "log.level": "loud",
    "log.format": "xml",
    "kube.qps": "fast",
    "kube.burst": "lots",
    "kube.timeout": 30,
}


def test_defaults_without_any_source() -> None:
    config = cfg.load()
    assert config == Config()
    assert config.provider == "kfp"
    assert config.default_experiment == "Default"
    assert config.run_completion_ttl is None
    assert config.metrics.bind_address == ":8080"
    assert config.health.bind_address == ":8081"
    assert config.events.nats.subject == "events"
    assert config.events.nats.jetstream is False
    assert config.leader_election.lease_duration == 15.0
    assert config.leader_election.renew_deadline == 10.0
    assert config.leader_election.retry_period == 2.0


def test_precedence_flag_over_env_over_file_over_default() -> None:
    file = {"workers": 2}
    env = {"KFP_OPERATOR_WORKERS": "3"}
    flags = {"workers": "5"}
    assert cfg.load(file, env, flags).workers == 5
    assert cfg.load(file, env, {}).workers == 3
    assert cfg.load(file, {}, {}).workers == 2
    assert cfg.load({}, {}, {}).workers == 8


def test_every_key_has_a_flag_and_an_environment_variable() -> None:
    parser = argparse.ArgumentParser()
    cfg.add_flags(parser)
    for spec in cfg.KEYS:
        assert spec.flag.startswith("--") and spec.env.startswith("KFP_OPERATOR_")
        argv = [spec.flag] if isinstance(spec.default, bool) else [spec.flag, "x"]
        assert cfg.flag_values(parser.parse_args(argv))[spec.key] in ("x", "true")
    assert cfg.spec("events.nats.url").flag == "--events-nats-url"
    assert cfg.spec("events.nats.url").env == "KFP_OPERATOR_EVENTS_NATS_URL"
    assert cfg.spec("kfp.endpoint").flag == "--kfp-endpoint"
    assert cfg.spec("runCompletionTTL").env == "KFP_OPERATOR_RUN_COMPLETION_TTL"
    assert cfg.spec("leaderElection.leaseDuration").flag == "--leader-election-lease-duration"


def test_values_from_flags_and_environment_are_parsed() -> None:
    parser = argparse.ArgumentParser()
    cfg.add_flags(parser)
    args = parser.parse_args(
        [
            "--kfp-multi-user",
            "--watch-namespaces",
            "a, b",
            "--run-completion-ttl",
            "1h30m",
            "--kube-qps",
            "-1",
        ]
    )
    env = {
        "KFP_OPERATOR_EVENTS_HTTP_SINKS": "http://one/,https://two/x",
        "KFP_OPERATOR_EVENTS_NATS_JETSTREAM": "true",
        "KFP_OPERATOR_POLL_INTERVAL": "250ms",
        "KFP_OPERATOR_MLMD_PORT": "9090",
    }
    config = cfg.load({}, env, cfg.flag_values(args))
    assert config.kfp.multi_user is True
    assert config.watch_namespaces == ("a", "b")
    assert config.run_completion_ttl == 5400.0
    assert config.kube.qps == -1.0
    assert config.events.http.sinks == (
        HttpSinkConfig(name="http://one", url="http://one/"),
        HttpSinkConfig(name="https://two", url="https://two/x"),
    )
    assert config.events.nats.jetstream is True
    assert config.poll_interval == 0.25
    assert config.mlmd.port == 9090


def test_file_values_are_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "runCompletionTTL: 24h\nkfp:\n  endpoint: https://kfp.example\nevents:\n  http:\n    sinks: [http://a]\n"
        "watchNamespaces: [team-a, team-b]\nleaderElection:\n  enabled: false\n"
    )
    config = cfg.load(cfg.read_file(path))
    assert config.run_completion_ttl == 86400.0
    assert config.kfp.endpoint == "https://kfp.example"
    assert config.events.http.sinks == (HttpSinkConfig(name="http://a", url="http://a"),)
    assert config.watch_namespaces == ("team-a", "team-b")
    assert config.leader_election.enabled is False
    assert config.value("kfp.endpoint") == "https://kfp.example"


def test_the_documented_message_for_a_bad_duration() -> None:
    with pytest.raises(ConfigError) as raised:
        cfg.load({"runCompletionTTL": "abc"})
    assert str(raised.value) == 'invalid configuration: runCompletionTTL: "abc" is not a duration'


def test_every_key_has_a_validation_case() -> None:
    assert set(BAD_VALUES) == set(cfg.key_names())


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_an_invalid_value_names_its_key(key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        cfg.load({key: BAD_VALUES[key]})
    assert str(raised.value).startswith(f"invalid configuration: {key}: ")
    assert raised.value.key == key


def test_an_invalid_environment_value_names_key_and_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        cfg.load({}, {"KFP_OPERATOR_WORKERS": "many"})
    assert (
        str(raised.value)
        == 'invalid configuration: workers: "many" is not an integer (from KFP_OPERATOR_WORKERS)'
    )


def test_unknown_keys_in_the_file_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("kfp:\n  endpoin: http://typo\n")
    with pytest.raises(ConfigError, match=r"kfp\.endpoin: unknown key"):
        cfg.read_file(path)
    path.write_text("kfpp:\n  endpoint: http://typo\n")
    with pytest.raises(ConfigError, match="kfpp: unknown key"):
        cfg.read_file(path)


def test_leader_election_timings_must_be_consistent() -> None:
    with pytest.raises(
        ConfigError, match=r"^invalid configuration: leaderElection.renewDeadline: 15s must be"
    ):
        cfg.load({"leaderElection.renewDeadline": "15s"})
    with pytest.raises(ConfigError, match=r"^invalid configuration: leaderElection.renewDeadline: "):
        cfg.load({"leaderElection.retryPeriod": "9s"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("-1m", -60.0),
        ("1m0.5s", 60.5),
        ("10us", 1e-5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1.5", "1d", "h", "1h 30m", "--1s", "1s2"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_go_duration(text)


def test_documented_keys_are_all_there() -> None:
    assert set(cfg.key_names()) >= DOCUMENTED_KEYS


def test_the_example_file_documents_every_key_and_loads_to_the_defaults() -> None:
    assert EXAMPLE.read_text() == cfg.example_yaml(), (
        "kfp_operator/config.example.yaml is stale; regenerate it with "
        "python -m kfp_operator.settings --example > kfp_operator/config.example.yaml"
    )
    assert set(cfg.read_file(EXAMPLE)) == set(cfg.key_names())
    assert cfg.load(cfg.read_file(EXAMPLE)) == Config()


def test_the_reference_table_lists_every_key() -> None:
    table = cfg.reference_markdown()
    for spec in cfg.KEYS:
        flags = " ".join(f"`{flag}`" for flag in (spec.flag, *spec.flag_aliases))
        assert f"| `{spec.key}` | {flags} | `{spec.env}` |" in table


def test_main_rejects_invalid_configuration_naming_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--run-completion-ttl", "abc"]) == 2
    assert 'invalid configuration: runCompletionTTL: "abc" is not a duration' in capsys.readouterr().err


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.startswith("kfp-operator 0.1.0")


def test_the_configuration_docs_name_every_key() -> None:
    text = (Path(cfg.__file__).parents[1] / "docs" / "configuration.md").read_text()
    missing = [key for key in cfg.key_names() if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_http_sinks_are_named_and_take_their_secrets_from_files() -> None:
    sinks = [
        {"name": "audit", "urlFile": "/etc/sinks/audit/url", "headersFile": "/etc/sinks/audit/headers"},
        {"name": "dashboard", "url": "https://dash.example/events", "caFile": "/etc/ca/ca.crt"},
    ]
    assert cfg.load({"events.http.sinks": sinks}).events.http.sinks == (
        HttpSinkConfig(
            name="audit", url_file="/etc/sinks/audit/url", headers_file="/etc/sinks/audit/headers"
        ),
        HttpSinkConfig(name="dashboard", url="https://dash.example/events", ca_file="/etc/ca/ca.crt"),
    )
    as_json = cfg.load({}, {"KFP_OPERATOR_EVENTS_HTTP_SINKS": json.dumps(sinks)})
    assert as_json.events.http.sinks[0].name == "audit"


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        ([{"name": "a", "url": "http://x", "urlFile": "/u"}], "sink a: exactly one of url and urlFile"),
        ([{"name": "a"}], "sink a: exactly one of url and urlFile"),
        ([{"name": "nats", "url": "http://x"}], "is not a name"),
        ([{"name": "has space", "url": "http://x"}], "is not a name"),
        ([{"name": "a", "url": "http://x", "token": "t"}], "unknown field(s) token"),
        ([{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}], "repeated: a"),
        (
            ["https://u:pw@hooks.example/T0/s3cr3t?k=tok", "https://hooks.example/other"],
            "repeated: https://hooks.example ",
        ),
        (["ftp://u:pw@files.example/s3cr3t?k=tok"], '"ftp://files.example" is not a URL'),
    ],
)
def test_bad_http_sinks_are_refused_without_showing_secrets(sinks: list[object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        cfg.load({"events.http.sinks": sinks})
    assert message in str(raised.value)
    for secret in ("pw", "s3cr3t", "tok"):
        assert secret not in str(raised.value).replace("token", "")


def test_a_kfp_endpoint_with_credentials_is_refused_without_showing_them() -> None:
    with pytest.raises(ConfigError) as raised:
        cfg.load({"kfp.endpoint": "https://admin:s3cr3t@kfp.example/api"})

    message = str(raised.value)
    assert "kfp.endpoint" in message and "user information; use kfp.tokenPath instead" in message
    assert '"https://kfp.example"' in message
    assert "s3cr3t" not in message and "admin" not in message


def test_controller_runtime_flag_names_set_the_same_keys() -> None:
    args = build_parser().parse_args(
        [
            "--leader-elect=false",
            "--health-probe-bind-address=:9440",
            "--metrics-bind-address=127.0.0.1:8443",
            "--zap-log-level=debug",
        ]
    )
    config = cfg.load({}, {}, cfg.flag_values(args))
    assert config.leader_election.enabled is False
    assert config.health.bind_address == ":9440"
    assert config.metrics.bind_address == "127.0.0.1:8443"
    assert config.log.level == "debug"


@pytest.mark.parametrize(
    ("given", "level"), [("2", "debug"), ("1", "debug"), ("0", "info"), ("error", "error")]
)
def test_zap_verbosity_numbers_are_log_levels(given: str, level: str) -> None:
    assert cfg.load({"log.level": given}).log.level == level


def test_help_shows_every_flags_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--workers VALUE Concurrent reconciles per controller. (default: 8)" in text
    assert "--poll-interval VALUE" in text and "(default: 10s)" in text
    assert "--leader-election-enabled [VALUE], --leader-elect [VALUE]" in text
    assert text.count("(default: ") == len(cfg.key_names())
