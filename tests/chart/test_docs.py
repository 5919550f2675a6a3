"""The documentation stays in step with the code, values.yaml, the schema and the dashboard.

Adding a configuration key, a chart value or a metric without documenting it fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfp_operator import settings as operator_config
from tests.chart.chartlib import (
    CHART,
    DOCS,
    PROJECT_ROOT,
    chart_values,
    config_keys,
    leaf_paths,
    section_paths,
)
from tests.chart.dashboard import exported_series, load_dashboard, operator_exposition, panels

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
# What a parent chart passes down: accepted by the schema, used by nothing, so not in values.yaml;
# chart.md explains them under "Using the chart as a subchart".
PARENT_VALUES = {"global", "enabled"}
MY_DOCS = ("installation.md", "configuration.md", "chart.md", "metrics.md")


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """Cells of the first table under ``heading`` (header and separator rows left out)."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    match = re.search(r"^\|.*?(?=\n[^|]|\Z)", section, flags=re.M | re.S)
    assert match, f"no table under {heading}"
    return [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in match.group(0).splitlines()[2:]
    ]


def lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


# ---- configuration.md -----------------------------------------------------------------------------


def test_configuration_reference_is_the_operators() -> None:
    text = (DOCS / "configuration.md").read_text()

    assert operator_config.reference_markdown() in text, (
        "docs/configuration.md is out of date; its table is `python -m kfp_operator.settings --markdown`"
    )


# ---- chart.md ----------------------------------------------------------------------------------------


def check_defaults(rows: list[list[str]]) -> None:
    values = chart_values()
    for path, default, *_ in rows:
        path = path.strip("`")
        if default == "see `values.yaml`":
            assert isinstance(lookup(values, path), dict | list), path
            continue
        assert default.startswith("`") and default.endswith("`"), (path, default)
        assert json.loads(default.strip("`")) == lookup(values, path), f"chart.md: default of {path}"


def test_chart_md_documents_every_value_with_its_default() -> None:
    rows = table_rows((DOCS / "chart.md").read_text(), "## Values")
    documented = [row[0].strip("`") for row in rows]
    expected = [p for p in leaf_paths(SCHEMA) if not p.startswith("config.") and p not in PARENT_VALUES]

    assert sorted(documented) == sorted(expected)
    assert all(row[2] for row in rows), "every value needs a description"
    check_defaults(rows)


def test_chart_md_explains_the_values_a_parent_chart_passes() -> None:
    section = (DOCS / "chart.md").read_text().split("\n## Using the chart as a subchart\n", 1)[1]
    section = section.split("\n## ", 1)[0]

    assert {value for value in PARENT_VALUES if f"`{value}`" not in section} == set()


def test_chart_md_lists_every_configuration_key() -> None:
    rows = table_rows((DOCS / "chart.md").read_text(), "## The operator configuration: `config`")

    assert [row[0].strip("`") for row in rows] == [f"config.{key}" for key in config_keys()]
    check_defaults(rows)


def test_every_schema_value_has_a_description() -> None:
    def walk(schema: dict[str, Any], path: str) -> None:
        for name, sub in schema.get("properties", {}).items():
            assert sub.get("description"), f"values.schema.json: {path}{name} has no description"
            walk(sub, f"{path}{name}.")

    walk(SCHEMA, "")


def test_every_value_in_values_yaml_has_a_comment() -> None:
    """Each key the schema names is preceded by a comment line in values.yaml."""
    documented_paths = set(section_paths(SCHEMA))
    stack: list[tuple[int, str]] = []
    previous = ""
    undocumented = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w-]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([*(key for _, key in stack), match.group(2)])
            stack.append((indent, match.group(2)))
            if path in documented_paths and not previous.lstrip().startswith("#"):
                undocumented.append(path)
        if line.strip():
            previous = line

    assert undocumented == []
    assert set(chart_values()) == set(SCHEMA["properties"]) - PARENT_VALUES


# ---- metrics.md ------------------------------------------------------------------------------------


METRIC_PREFIXES = (
    "kfp_operator_",
    "controller_runtime_",
    "workqueue_",
    "rest_client_",
    "leader_election_",
    "process_",
)


def test_metrics_md_describes_every_metric_and_only_those() -> None:
    text = (DOCS / "metrics.md").read_text()
    exposition = operator_exposition()
    families = set(re.findall(r"^# TYPE (\S+) ", exposition, flags=re.M))
    described = {
        row[0].strip("`")
        for heading in ("## Run metrics", "## controller-runtime metrics", "## Process metrics")
        for row in table_rows(text, heading)
    }
    mentioned = {
        name
        for name in re.findall(r"\b([a-z_]+)(?=[{`\[)\s])", text)
        if name.startswith(METRIC_PREFIXES) and name not in METRIC_PREFIXES
    }

    assert described == families
    assert mentioned - exported_series(exposition) == set()


def test_metrics_md_describes_every_dashboard_panel() -> None:
    text = (DOCS / "metrics.md").read_text()
    titles = {p["title"] for p in panels(load_dashboard()) if p["type"] != "row"}

    assert {title for title in titles if f"\n| {title} |" not in text} == set()


def test_metrics_md_alert_queries_are_valid_promql(tmp_path: Path, promtool: Path) -> None:
    (block,) = re.findall(r"```promql\n(.*?)```", (DOCS / "metrics.md").read_text(), flags=re.S)
    queries = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    path = tmp_path / "alerts.yaml"
    rules = [{"alert": f"Example{i}", "expr": query} for i, query in enumerate(queries)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "examples", "rules": rules}]}))

    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=30, check=False
    )

    assert len(queries) >= 5
    assert result.returncode == 0, result.stdout + result.stderr


# ---- links ------------------------------------------------------------------------------------------


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.*)$", markdown, flags=re.M)
    }


@pytest.mark.parametrize("doc", MY_DOCS)
def test_relative_links_resolve(doc: str) -> None:
    text = (DOCS / doc).read_text()
    for target in re.findall(r"\]\(([^)#:]+\.md)?(?:#([^)]+))?\)", text):
        file, anchor = target
        path = DOCS / file if file else DOCS / doc
        assert path.exists(), f"{doc}: link to {file}"
        if anchor:
            assert anchor in anchors(path.read_text()), f"{doc}: link to {file}#{anchor}"


def test_documented_paths_exist() -> None:
    for doc in MY_DOCS:
        for path in re.findall(r"`((?:charts|controller|examples|crds)/[\w./-]+)`", (DOCS / doc).read_text()):
            assert (PROJECT_ROOT / path).exists(), f"{doc}: {path}"
