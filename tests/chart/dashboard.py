"""Reading the Grafana dashboard's queries and checking them against a metrics exposition.

:func:`missing_series` takes any Prometheus text exposition, so the same check can run against a
live operator's ``/metrics``::

    text = urllib.request.urlopen("http://127.0.0.1:8080/metrics").read().decode()
    assert missing_series(load_dashboard(), text) == set()

(A fresh operator exports a labelled series only once it has a value, so scrape it after it has
reconciled and called KFP and ML Metadata.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from controller.metrics import Metrics
from kfp_operator.__main__ import register_build_info
from kfp_operator.clients.kfp import KfpMetrics
from kfp_operator.clients.mlmd import MlmdMetrics
from reconcilers.run_metrics import RunCacheCollector, RunConfigurationMetrics, RunMetrics
from tests.chart.chartlib import CHART
from tests.support.objects import run

DASHBOARD = CHART / "dashboards" / "kfp-operator.json"
SELECTOR = 'job="$job", namespace="$namespace", pod=~"$pod"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# PromQL words that are not metric names: functions, aggregations, keywords.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "rate", "irate", "increase", "delta",
    "histogram_quantile", "clamp_min", "clamp_max", "abs", "label_values", "offset", "bool", "absent",
}  # fmt: skip
IDENTIFIER = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variable queries."""
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            assert match, variable["query"]
            exprs.append(match.group(1))
    return exprs


def series_names(expr: str) -> set[str]:
    """Names of the series an expression selects, with or without label matchers."""
    rest = re.sub(r'"[^"]*"', '""', expr)  # strings
    names = set(re.findall(rf"({IDENTIFIER})\s*\{{", rest))
    rest = re.sub(rf"{IDENTIFIER}\s*\{{[^}}]*\}}", "", rest)  # selectors with matchers
    rest = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", rest)  # labels
    rest = re.sub(r"\[[^\]]*\]", "", rest)  # ranges
    return names | {word for word in re.findall(IDENTIFIER, rest) if word not in PROMQL_WORDS}


def exported_series(exposition: str) -> set[str]:
    """Series names a text exposition declares (``# TYPE`` lines), histograms' and summaries' included."""
    names = set()
    for name, kind in re.findall(rf"^# TYPE ({IDENTIFIER}) (\w+)$", exposition, flags=re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "summary":
            names |= {f"{name}_sum", f"{name}_count"}
    return names


def missing_series(dashboard: dict[str, Any], exposition: str) -> set[str]:
    """Series the dashboard queries that the exposition does not export."""
    queried = set().union(*(series_names(e) for e in expressions(dashboard)))
    return queried - exported_series(exposition)


def operator_exposition() -> str:
    """The operator's metric registry, assembled in-process as the operator assembles it.

    The exposition leaves out labelled metrics that have no series yet, so each one gets a
    series here, with label values like the ones the operator uses (which cannot add names).
    """
    metrics = Metrics()
    register_build_info(metrics.registry)
    metrics.init_controller("run", workers=4)
    provider = metrics.workqueue_provider
    for new_series in (
        provider.new_depth_metric,
        provider.new_adds_metric,
        provider.new_latency_metric,
        provider.new_work_duration_metric,
        provider.new_unfinished_work_seconds_metric,
        provider.new_longest_running_processor_seconds_metric,
        provider.new_retries_metric,
    ):
        new_series("run")
    metrics.rest_client_requests.labels("200", "GET", "kube-apiserver:443")
    metrics.leader_election_master_status.labels("kfp-operator-leader")
    kfp = KfpMetrics(metrics.registry)
    kfp.requests.labels("list_runs", "200")
    kfp.duration.labels("list_runs")
    mlmd = MlmdMetrics(metrics.registry)
    mlmd.requests.labels("GetContextByTypeAndName", "OK")
    mlmd.duration.labels("GetContextByTypeAndName")
    runs = RunMetrics(metrics.registry)
    runs.run_duration.labels("succeeded")
    runs.event_deliveries.labels("nats", "failed")
    RunConfigurationMetrics(metrics.registry)
    waiting = run(status={"conditions": [{"type": "DependenciesResolved", "status": "False", "reason": "X"}]})
    metrics.registry.register(RunCacheCollector(lambda: [waiting]))
    return generate_latest(metrics.registry).decode()
