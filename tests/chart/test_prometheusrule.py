"""The chart's PrometheusRule: valid rules, alerts that fire when they should, on exported series.

``promtool check rules`` validates the rendered groups (expressions and annotation templates);
``promtool test rules`` runs the unit tests of prometheusrule-tests.yaml against them, among
them that KFP's 404s while a Run waits for its pipeline are not errors. The API server checks
the object against the Prometheus Operator's CRD (test_chart_validation, all features).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartlib import DOCS, HelmError, render
from tests.chart.dashboard import exported_series, operator_exposition, series_names
from tests.chart.test_docs import table_rows

UNIT_TESTS = Path(__file__).with_name("prometheusrule-tests.yaml")
ALERTS = {
    "KfpOperatorDown",
    "KfpOperatorNoLeader",
    "KfpOperatorReconcileErrors",
    "KfpOperatorRunsWaiting",
    "KfpOperatorEventDeliveryFailing",
    "KfpOperatorCompletionLagHigh",
    "KfpOperatorKfpErrors",
    "KfpOperatorMlmdErrors",
}


def rules(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = render({"prometheusRule": {"enabled": True}, **(values or {})})
    (group,) = rendered.one("PrometheusRule")["spec"]["groups"]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def promtool_run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=60, check=False)


def write_rules(path: Path, rule_list: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": [{"name": "kfp-operator", "rules": rule_list}]}))
    return path


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "config": {"leaderElection": {"enabled": False}},
            "prometheusRule": {"enabled": True, "alertLabels": {"team": "ml"}},
        },
    ],
    ids=["defaults", "no-leader-election"],
)
def test_the_rules_pass_promtool_check(values: dict[str, Any], tmp_path: Path, promtool: Path) -> None:
    result = promtool_run(
        promtool, "check", "rules", str(write_rules(tmp_path / "rules.yaml", rules(values)))
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_when_and_only_when_they_should(tmp_path: Path, promtool: Path) -> None:
    # promtool compares annotations verbatim; their templates are checked by `check rules` above.
    bare = [{k: v for k, v in rule.items() if k != "annotations"} for rule in rules()]
    write_rules(tmp_path / "rules.yaml", bare)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)

    result = promtool_run(promtool, "test", "rules", str(tmp_path / UNIT_TESTS.name))

    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    assert tested == ALERTS


def test_every_alert_has_a_severity_summary_and_description() -> None:
    found = rules()

    assert {rule["alert"] for rule in found} == ALERTS
    for rule in found:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_alerts_query_only_series_the_operator_exports() -> None:
    exported = exported_series(operator_exposition()) | {"up"}  # up: Prometheus's own, per target

    queried = set().union(*(series_names(rule["expr"]) for rule in rules()))

    assert queried - exported == set()


def test_the_alerts_select_this_releases_series() -> None:
    found = rules()
    rendered = render({"prometheusRule": {"enabled": True}}, release="prod", namespace="ml")
    (group,) = rendered.one("PrometheusRule")["spec"]["groups"]

    for rule in found:
        assert 'job="kfp-operator-metrics", namespace="kfp-operator"' in rule["expr"], rule["alert"]
    for rule in group["rules"]:
        assert 'job="prod-kfp-operator-metrics", namespace="ml"' in rule["expr"], rule["alert"]


def test_thresholds_and_labels_follow_the_values() -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "runsWaitingFor": "2h",
            "completionLagSeconds": 600,
            "alertLabels": {"team": "ml", "severity": "page"},
        },
        "config": {"leaderElection": {"name": "kfp-lease"}},
    }
    by_name = {rule["alert"]: rule for rule in rules(values)}

    assert by_name["KfpOperatorRunsWaiting"]["for"] == "2h"
    assert by_name["KfpOperatorCompletionLagHigh"]["expr"].endswith("> 600")
    assert 'name="kfp-lease"' in by_name["KfpOperatorNoLeader"]["expr"]
    assert all(rule["labels"] == {"team": "ml", "severity": "page"} for rule in by_name.values())


def test_without_leader_election_there_is_no_leader_to_alert_on() -> None:
    alerts = {rule["alert"] for rule in rules({"config": {"leaderElection": {"enabled": False}}})}

    assert alerts == ALERTS - {"KfpOperatorNoLeader"}


def test_the_rule_is_off_by_default_and_labelled_for_prometheus() -> None:
    assert "PrometheusRule" not in render().kinds()
    rule = render({"prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}}}).one(
        "PrometheusRule"
    )
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    with pytest.raises(HelmError, match="/prometheusRule/runsWaitingFor"):
        render({"prometheusRule": {"runsWaitingFor": "half an hour"}})


def test_metrics_md_documents_every_alert() -> None:
    rows = table_rows((DOCS / "metrics.md").read_text(), "## Alerts")

    assert {row[0].strip("`") for row in rows} == ALERTS
