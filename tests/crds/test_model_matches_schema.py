"""The model the reconcilers read and the CRD schema describe the same fields.

An object holding every field the schema allows in a Run's spec is read by the model and written
back: anything the schema has that the model drops, or the model invents, breaks the round trip.
"""

from __future__ import annotations

from typing import Any

from reconcilers.api import API_VERSION, GROUP, RUN_CONFIGURATIONS, RUNS, VERSION
from reconcilers.api.crds import definitions, run_configuration_crd, run_crd
from reconcilers.api.run import RunSpec


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def every_field(schema: dict[str, Any]) -> Any:
    """An instance with every property of ``schema`` set (lists with one item)."""
    match schema["type"]:
        case "object":
            return {name: every_field(prop) for name, prop in schema.get("properties", {}).items()}
        case "array":
            return [every_field(schema["items"])]
        case "string":
            if "enum" in schema:
                return schema["enum"][0]
            return "name:v1" if "pattern" in schema and "?:" in schema["pattern"] else "x"
    raise AssertionError(f"unexpected schema type {schema['type']}")


def test_every_field_of_a_runs_spec_is_read_by_the_model() -> None:
    spec = every_field(schema_of(run_crd())["properties"]["spec"])
    # value and valueFrom are exclusive (a CEL rule); one parameter of each kind covers both.
    (both,) = spec["runtimeParameters"]
    spec["runtimeParameters"] = [
        {"name": "literal", "value": both["value"]},
        {"name": "from", "valueFrom": both["valueFrom"]},
    ]

    assert RunSpec.from_dict(spec).to_dict() == spec


def test_the_run_configurations_run_is_the_runs_spec() -> None:
    run_spec = schema_of(run_crd())["properties"]["spec"]
    rc_run = schema_of(run_configuration_crd())["properties"]["spec"]["properties"]["run"]

    # Identical but for the immutability rule a Run adds and the description.
    strip = {"x-kubernetes-validations", "description"}
    assert {k: v for k, v in run_spec.items() if k not in strip} == {
        k: v for k, v in rc_run.items() if k not in strip
    }


def test_group_version_and_kinds_come_from_the_api_package() -> None:
    assert f"{GROUP}/{VERSION}" == API_VERSION
    by_kind = {crd["spec"]["names"]["kind"]: crd for crd in definitions()}
    for resource in (RUNS, RUN_CONFIGURATIONS):
        crd = by_kind[resource.kind]
        assert crd["metadata"]["name"] == f"{resource.plural}.{GROUP}"
        assert crd["spec"]["group"] == resource.group == GROUP
        assert [v["name"] for v in crd["spec"]["versions"]] == [resource.version] == [VERSION]
