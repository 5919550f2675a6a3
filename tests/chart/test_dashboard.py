"""The Grafana dashboard: every series it queries is one the operator exports, and it is well formed."""

from __future__ import annotations

import re
import subprocess
from itertools import combinations
from pathlib import Path

import yaml

from tests.chart.dashboard import (
    DATASOURCE,
    IDENTIFIER,
    SELECTOR,
    exported_series,
    expressions,
    load_dashboard,
    missing_series,
    operator_exposition,
    panels,
    series_names,
)

# ---- the series ------------------------------------------------------------------------------------


def test_every_series_the_dashboard_queries_is_exported() -> None:
    assert missing_series(load_dashboard(), operator_exposition()) == set()


def test_the_check_notices_a_series_the_operator_does_not_export() -> None:
    dashboard = load_dashboard()
    dashboard["panels"][1]["targets"][0]["expr"] = 'sum(rate(kfp_operator_made_up_total{job="$job"}[5m]))'

    assert missing_series(dashboard, operator_exposition()) == {"kfp_operator_made_up_total"}


def test_series_names_reads_bare_and_braced_selectors() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y{"}[5m]))) / on (pod) b_total'

    assert series_names(expr) == {"a_bucket", "b_total"}


def test_the_dashboard_shows_every_run_metric() -> None:
    queried = set().union(*(series_names(e) for e in expressions(load_dashboard())))
    run_metrics = {
        name.removesuffix("_bucket")
        for name in exported_series(operator_exposition())
        if name.startswith("kfp_operator_") and not name.endswith(("_sum", "_count"))
    }

    assert run_metrics - {q.removesuffix("_bucket") for q in queried} == set()


# ---- the queries -------------------------------------------------------------------------------------


def test_every_query_is_valid_promql(tmp_path: Path, promtool: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query{index}",
            "expr": expr.replace("$job", "kfp-operator").replace("$namespace", "ns").replace("$pod", ".*"),
        }
        for index, expr in enumerate(expressions(load_dashboard()))
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_query_is_scoped_by_job_namespace_and_pod() -> None:
    for panel in panels(load_dashboard()):
        for target in panel.get("targets", []):
            selectors = re.findall(rf"{IDENTIFIER}\s*\{{([^}}]*)\}}", target["expr"])
            assert selectors, target["expr"]
            assert all(s.startswith(SELECTOR) for s in selectors), target["expr"]


def test_template_variables_are_kubebuilders() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}

    assert variables.keys() == {"datasource", "namespace", "job", "pod"}
    assert variables["datasource"]["query"] == "prometheus"
    assert (
        variables["namespace"]["query"]["query"]
        == "label_values(controller_runtime_reconcile_total, namespace)"
    )
    assert variables["job"]["query"]["query"] == (
        'label_values(controller_runtime_reconcile_total{namespace=~"$namespace"}, job)'
    )
    assert variables["pod"]["includeAll"] and variables["pod"]["multi"]


# ---- the layout ----------------------------------------------------------------------------------------


def test_panels_have_unique_ids_a_data_source_and_do_not_overlap() -> None:
    dashboard = load_dashboard()
    all_panels = list(panels(dashboard))

    assert len({p["id"] for p in all_panels}) == len(all_panels)
    for panel in all_panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["description"], panel["title"]
            assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    for a, b in combinations(all_panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        overlap = (
            ga["x"] < gb["x"] + gb["w"]
            and gb["x"] < ga["x"] + ga["w"]
            and ga["y"] < gb["y"] + gb["h"]
            and gb["y"] < ga["y"] + ga["h"]
        )
        assert not overlap, (a["title"], b["title"])


def test_the_dashboard_has_the_promised_panels() -> None:
    titles = {p["title"] for p in panels(load_dashboard())}

    assert {
        "Reconciles by controller and result",
        "Reconcile errors by controller",
        "Work queue depth",
        "Queue latency (p50, p90, p99)",
        "Work duration (p50, p90, p99)",
        "Work queue retries",
        "Workers in use",
        "Submissions by result",
        "Completions by state",
        "Completion lag (p50, p99)",
        "Runs waiting on dependencies",
        "Event delivery failures by sink",
        "TTL deletions and KFP terminations",
        "KFP requests by operation",
        "KFP errors by operation and code",
        "KFP request latency (p50, p99)",
        "ML Metadata requests by RPC and code",
        "ML Metadata request latency (p50, p99)",
        "CPU",
        "CPU by thread",
        "Memory",
    } <= titles
