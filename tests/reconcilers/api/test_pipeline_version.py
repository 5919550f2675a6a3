"""The Pipeline's version as the reference operator computes it, and image references as Docker reads them.

The expected versions were computed with the reference's algorithm (``Pipeline.ComputeVersion``:
its ObjectHasher and github.com/distribution/reference v0.6.0) in Go, so a Pipeline migrated from
the reference keeps its version.
"""

from __future__ import annotations

import pytest

from reconcilers.api.experiment import experiment_version
from reconcilers.api.kfp_objects import (
    NAMES_AS_IS,
    NAMES_NAMESPACED,
    Owner,
    kfp_name,
    owner_of,
    user_description,
)
from reconcilers.api.pipeline import InvalidImage, PipelineSpec, content_version, image_version, parse_image

DIGEST = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"


def spec(image: str, tfx: str = "", env=(), beam=(), function: str = "") -> PipelineSpec:
    return PipelineSpec.from_dict(
        {
            "image": image,
            "tfxComponents": tfx,
            "pipelineFunction": function,
            "env": [{"name": n, "value": v} for n, v in env],
            "beamArgs": [{"name": n, "value": v} for n, v in beam],
        }
    )


@pytest.mark.parametrize(
    ("pipeline", "version"),
    [
        (spec(""), "9069ca"),
        (spec("image:42"), "42-9b9f4d"),
        (spec("docker.io/baz/bar/image:baz"), "baz-5ddf0f"),
        (spec("image"), "latest-ade2d5"),  # untagged: latest (the operator refuses such images)
        (spec(":"), "52a251"),  # malformed: the hash alone
        (
            spec("kfp-quickstart:v1", "base_pipeline.create_components", env=[("TRAINING_RUNS", "100")]),
            "v1-fbc053",
        ),
        (
            spec(
                "registry.example.com:5000/team/penguin:v1.2.3",
                "pipeline.create_components",
                env=[("B", "2"), ("A", "1")],
                beam=[("project", "p"), ("region", "eu")],
            ),
            "v1.2.3-a111f8",
        ),
        (spec("localhost:5000/image", "m.f"), "latest-a2b13a"),
        (spec("Uppercase/image:1", "m.f"), "1-d56d1f"),  # an uppercase first part is a domain
        (spec(f"image@{DIGEST}", "m.f"), "4ed153"),  # digest only: no tag
        (spec(f"image:v1@{DIGEST}", "m.f"), "v1-356d70"),
        (spec(DIGEST.removeprefix("sha256:"), "m.f"), "e84a26"),  # a bare id is not a name
        (spec("UPPER:tag", "m.f"), "83d7de"),  # repository names are lowercase
        (
            spec(
                "ghcr.io/org/img:tag_with.dots-and-dashes",
                "m.f",
                env=[("a", "")],
                beam=[("a", "x"), ("a", "")],
            ),
            "tag_with.dots-and-dashes-34732c",
        ),
    ],
)
def test_the_version_is_the_reference_operators(pipeline: PipelineSpec, version: str) -> None:
    assert image_version(pipeline) == version


def test_every_field_changes_the_version_and_pipeline_function_only_when_set() -> None:
    base = spec("image:1", "m.f", env=[("a", "1")], beam=[("b", "2")])
    variants = [
        spec("image:2", "m.f", env=[("a", "1")], beam=[("b", "2")]),
        spec("image:1", "m.g", env=[("a", "1")], beam=[("b", "2")]),
        spec("image:1", "m.f", env=[("a", "2")], beam=[("b", "2")]),
        spec("image:1", "m.f", env=[("a", "1")], beam=[("b", "3")]),
        spec("image:1", "m.f", env=[("a", "1")], beam=[("b", "2")], function="p.q"),
    ]
    assert len({image_version(v) for v in [base, *variants]}) == 6
    # The order of env and beamArgs does not matter, as in the reference.
    assert image_version(spec("i:1", env=[("a", "1"), ("b", "2")])) == image_version(
        spec("i:1", env=[("b", "2"), ("a", "1")])
    )


def test_a_kfp_sdk_pipeline_has_the_tag_and_a_hash_of_its_function() -> None:
    version = image_version(spec("ghcr.io/team/pipelines:2.0", function="training.pipeline"))
    assert version.startswith("2.0-") and len(version) == len("2.0-") + 6


@pytest.mark.parametrize(
    ("image", "name", "tag", "digest"),
    [
        ("python", "docker.io/library/python", None, None),
        ("python:3.11", "docker.io/library/python", "3.11", None),
        ("team/app:v1", "docker.io/team/app", "v1", None),
        ("localhost/app:v1", "localhost/app", "v1", None),
        ("registry:5000/app", "registry:5000/app", None, None),
        ("[::1]:5000/app:x", "[::1]:5000/app", "x", None),
        (f"app@{DIGEST}", "docker.io/library/app", None, DIGEST),
    ],
)
def test_image_references(image: str, name: str, tag: str | None, digest: str | None) -> None:
    reference = parse_image(image)
    assert (reference.name, reference.tag, reference.digest) == (name, tag, digest)


@pytest.mark.parametrize(
    "image",
    ["", ":", "UPPER:tag", "a" * 64, "app:", "app:-x", "app@sha256:abc", "app@md5:" + "a" * 32, "a//b"],
)
def test_invalid_image_references(image: str) -> None:
    with pytest.raises(InvalidImage):
        parse_image(image)


def test_content_and_experiment_versions() -> None:
    assert experiment_version("penguin experiment") == "58181e"
    assert content_version("{}") != content_version("[]")
    assert len(content_version("x")) == 6


def test_kfp_names() -> None:
    assert kfp_name(NAMES_AS_IS, "team-a", "penguin") == "penguin"
    assert kfp_name(NAMES_NAMESPACED, "team-a", "penguin") == "team-a-penguin"


def test_ownership_markers_round_trip_and_stay_out_of_the_users_description() -> None:
    owner = Owner("Pipeline", "team-a", "penguin", "uid-1", "ab12")
    description = owner.describe("Trains penguins.\nTwo lines.")
    assert owner_of(description) == owner
    assert user_description(description) == "Trains penguins.\nTwo lines."
    assert owner_of("made by hand") is None
    assert user_description(Owner("Experiment", "a", "b", "c").describe()) == ""
    # The same resource (namespace and name) owns it whatever the UID or spec digest says; another
    # namespace or kind does not.
    assert owner.owns(Owner("Pipeline", "team-a", "penguin", "uid-2"))
    assert not owner.owns(Owner("Pipeline", "team-b", "penguin", "uid-1"))
    assert not owner.owns(Owner("Experiment", "team-a", "penguin", "uid-1"))
    assert not owner.owns(None)
