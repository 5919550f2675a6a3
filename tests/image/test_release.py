"""The release shape: the project, the chart and the image share one version, and the changelog
and the documentation say the same."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from tests.chart.chartlib import CHART, chart_values, render

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")


def project_version() -> str:
    return str(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"])


def chart() -> dict[str, str]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def test_the_project_chart_and_image_versions_agree() -> None:
    version = project_version()

    assert SEMVER.fullmatch(version)
    assert chart()["version"] == version
    assert chart()["appVersion"] == version
    # The chart deploys the image `make image` builds by default: kfp-operator:<version>.
    assert chart_values()["image"]["tag"] == ""
    assert render().container["image"] == f"kfp-operator:{version}"


def test_the_changelog_keeps_an_unreleased_section_first() -> None:
    text = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, flags=re.M)

    assert sections and sections[0] == ("Unreleased", "")
    for name, date in sections[1:]:
        assert SEMVER.fullmatch(name) and date, f"## [{name}] - {date}: a release needs a version and a date"
    assert re.search(r"^### (Added|Changed|Deprecated|Removed|Fixed|Security)$", text, flags=re.M)


def test_image_tags_in_the_documentation_are_the_current_version() -> None:
    version = project_version()
    documents = [
        PROJECT_ROOT / "README.md",
        PROJECT_ROOT / "CHANGELOG.md",
        *(PROJECT_ROOT / "docs").glob("*.md"),
    ]

    for document in documents:
        for tag in re.findall(rf"kfp-operator:({SEMVER.pattern})", document.read_text()):
            assert tag == version, f"{document.name} shows kfp-operator:{tag}"
