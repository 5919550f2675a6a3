"""Writes the configuration reference from the settings declarations.

``kfp_operator/config.example.yaml`` (every key at its default, commented) and the key table of
``docs/configuration.md`` are generated from ``kfp_operator.settings``; `make generate` runs this
and a test fails when either is out of date.

Usage: python hack/gen_config_docs.py
"""

from __future__ import annotations

from pathlib import Path

from kfp_operator import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT_ROOT / "kfp_operator" / "config.example.yaml"
REFERENCE = PROJECT_ROOT / "docs" / "configuration.md"
TABLE_HEADER = "| Key | Flag | Environment variable | Default | Description |"


def with_table(document: str, table: str) -> str:
    """The document with its key table (from the header row to the last row) replaced."""
    lines = document.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + table + "".join(lines[end:])


def main() -> None:
    EXAMPLE.write_text(settings.example_yaml())
    REFERENCE.write_text(with_table(REFERENCE.read_text(), settings.reference_markdown()))


if __name__ == "__main__":
    main()
