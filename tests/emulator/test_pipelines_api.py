"""PipelineService and the upload endpoints."""

from __future__ import annotations

import pytest
from kfp_server_api import V2beta1Pipeline, V2beta1PipelineVersion, V2beta1Url
from kfp_server_api.exceptions import ApiException

from tests.emulator.helpers import EXAMPLE_GENERATOR_YAML, PENGUIN_YAML, error_body, raw_call, unique

# Run against both KFP backends: the emulator's API and the real KFP API server.
pytestmark = pytest.mark.contract


def _upload_error(error):
    """An upload error body; the real server's error_details carry a Go stack after the first line."""
    body = error_body(error)
    return {**body, "error_details": body["error_details"].split("\n")[0]}


def test_upload_creates_a_pipeline_and_a_first_version_named_alike(kfp):
    name = unique("penguin-pipeline")
    pipeline = kfp.uploads.upload_pipeline(str(PENGUIN_YAML), name=name, description="trains penguins")

    assert (pipeline.name, pipeline.display_name, pipeline.description) == (name, name, "trains penguins")
    versions = kfp.pipelines.pipeline_service_list_pipeline_versions(pipeline.pipeline_id)
    assert versions.total_size == 1
    [version] = versions.pipeline_versions
    assert (version.name, version.pipeline_id) == (name, pipeline.pipeline_id)
    assert version.pipeline_spec["pipelineInfo"]["name"] == "penguin-pipeline"


def test_upload_takes_the_name_from_the_display_name_then_the_file_name(kfp, tmp_path):
    display_name = unique("Penguin Pipeline")
    by_display_name = kfp.uploads.upload_pipeline(str(PENGUIN_YAML), display_name=display_name)
    assert (by_display_name.name, by_display_name.display_name) == (display_name, display_name)

    package = tmp_path / f"{unique('generator')}.yaml"
    package.write_bytes(EXAMPLE_GENERATOR_YAML.read_bytes())
    by_file_name = kfp.uploads.upload_pipeline(str(package))
    assert (by_file_name.name, by_file_name.display_name) == (package.name, package.name)


def test_upload_of_a_taken_name_is_a_409_in_the_upload_error_shape(kfp, penguin):
    with pytest.raises(ApiException) as raised:
        kfp.uploads.upload_pipeline(str(PENGUIN_YAML), name=penguin.name)

    assert raised.value.status == 409
    assert _upload_error(raised.value) == {
        "error_message": "Failed to create a pipeline and a pipeline version",
        "error_details": "Failed to create a pipeline and a pipeline version",
    }


def test_upload_of_something_that_is_not_a_pipeline_spec_is_a_400(kfp, tmp_path):
    not_a_spec = tmp_path / "notes.yaml"
    not_a_spec.write_text("just: a mapping\n")

    with pytest.raises(ApiException) as raised:
        kfp.uploads.upload_pipeline(str(not_a_spec), name=unique("broken"))

    assert raised.value.status == 400
    assert _upload_error(raised.value) == {
        "error_message": "unknown template format",
        "error_details": "unknown template format",
    }


def test_upload_without_the_file_field_is_a_400(emulator):
    response = raw_call(
        emulator.url,
        "POST",
        "/apis/v2beta1/pipelines/upload",
        raw_body=b"--b\r\nContent-Disposition: form-data; name=other\r\n\r\nx\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )

    assert response.status == 400
    assert response.body["error_message"] == "Failed to read pipeline from file"


def test_upload_version_adds_a_version_to_the_pipeline(kfp, penguin):
    version = kfp.uploads.upload_pipeline_version(
        str(PENGUIN_YAML), name="v2", pipelineid=penguin.pipeline_id
    )

    assert (version.name, version.display_name, version.pipeline_id) == ("v2", "v2", penguin.pipeline_id)
    listed = kfp.pipelines.pipeline_service_list_pipeline_versions(penguin.pipeline_id, sort_by="name")
    assert [v.name for v in listed.pipeline_versions] == sorted([penguin.name, "v2"])


def test_upload_version_to_an_unknown_pipeline_or_under_a_taken_name_fails(kfp, penguin):
    with pytest.raises(ApiException) as unknown:
        kfp.uploads.upload_pipeline_version(str(PENGUIN_YAML), name="v2", pipelineid="no-such-pipeline")
    with pytest.raises(ApiException) as taken:
        kfp.uploads.upload_pipeline_version(
            str(PENGUIN_YAML), name=penguin.name, pipelineid=penguin.pipeline_id
        )

    assert (unknown.value.status, taken.value.status) == (400, 409)
    assert error_body(unknown.value)["error_message"] == "Failed to create a pipeline version"


def test_get_pipeline_and_get_by_name(kfp, penguin):
    assert kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id).name == penguin.name
    assert (
        kfp.pipelines.pipeline_service_get_pipeline_by_name(penguin.name).pipeline_id == penguin.pipeline_id
    )


def test_get_by_name_of_an_unknown_pipeline_is_a_404_naming_namespace_and_name(kfp):
    name = unique("missing")
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_get_pipeline_by_name(name)

    assert raised.value.status == 404
    body = error_body(raised.value)
    assert body["code"] == 5
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.Status",
            "code": 5,
            "message": f"Namespace/Pipeline /{name} not found",
        }
    ]


def test_get_unknown_pipeline_is_a_404_with_a_nested_status_detail(kfp):
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_get_pipeline("nope")

    assert raised.value.status == 404
    assert error_body(raised.value) == {
        "code": 5,
        "message": (
            "Failed to get a pipeline nope. Check error stack: Failed to get a pipeline with id nope: "
            "ResourceNotFoundError: Pipeline nope not found"
        ),
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.Status",
                "code": 5,
                "message": "Pipeline nope not found",
            }
        ],
    }


def test_create_pipeline_from_json_and_reject_a_taken_name(kfp):
    name = unique("created")
    created = kfp.pipelines.pipeline_service_create_pipeline(V2beta1Pipeline(name=name, tags={"team": "ml"}))

    assert (created.name, created.display_name, created.tags) == (name, name, {"team": "ml"})
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_create_pipeline(V2beta1Pipeline(display_name=name))
    assert raised.value.status == 409
    assert error_body(raised.value)["code"] == 6


def test_create_version_needs_the_pipeline_id_in_the_body_and_an_https_package_url(kfp):
    pipeline = kfp.pipelines.pipeline_service_create_pipeline(V2beta1Pipeline(name=unique("from-url")))
    package = V2beta1Url(pipeline_url=PENGUIN_YAML.as_uri())

    with pytest.raises(ApiException) as no_parent:  # the id in the path is not enough
        kfp.pipelines.pipeline_service_create_pipeline_version(
            pipeline.pipeline_id, V2beta1PipelineVersion(name="v1", package_url=package)
        )
    with pytest.raises(ApiException) as not_https:
        kfp.pipelines.pipeline_service_create_pipeline_version(
            pipeline.pipeline_id,
            V2beta1PipelineVersion(pipeline_id=pipeline.pipeline_id, name="v1", package_url=package),
        )

    assert (no_parent.value.status, error_body(no_parent.value)["message"]) == (
        400,
        "Invalid input error: Failed to create a pipeline version. Parent pipeline id is empty",
    )
    assert (not_https.value.status, error_body(not_https.value)["message"]) == (
        400,
        "Failed to create a pipeline version. Check error stack: Invalid input error: "
        "Pipeline URL validation failed",
    )


def test_get_version_ignores_the_pipeline_id_in_the_path(kfp, penguin):
    [version] = kfp.pipelines.pipeline_service_list_pipeline_versions(penguin.pipeline_id).pipeline_versions

    fetched = kfp.pipelines.pipeline_service_get_pipeline_version("any-pipeline", version.pipeline_version_id)

    assert fetched.pipeline_version_id == version.pipeline_version_id


def test_versions_of_an_unknown_pipeline_are_a_404(kfp):
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_list_pipeline_versions("no-such-pipeline")
    assert raised.value.status == 404


def test_delete_version_then_get_is_a_404(kfp, penguin):
    version = kfp.uploads.upload_pipeline_version(
        str(PENGUIN_YAML), name="v2", pipelineid=penguin.pipeline_id
    )

    assert (
        kfp.as_json(
            kfp.pipelines.pipeline_service_delete_pipeline_version(
                penguin.pipeline_id, version.pipeline_version_id
            )
        )
        == {}
    )
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_get_pipeline_version(penguin.pipeline_id, version.pipeline_version_id)
    assert raised.value.status == 404


def test_delete_pipeline_with_versions_needs_cascade(kfp, penguin):
    with pytest.raises(ApiException) as raised:
        kfp.pipelines.pipeline_service_delete_pipeline(penguin.pipeline_id)
    assert raised.value.status == 400

    kfp.pipelines.pipeline_service_delete_pipeline(penguin.pipeline_id, cascade=True)
    with pytest.raises(ApiException) as gone:
        kfp.pipelines.pipeline_service_get_pipeline(penguin.pipeline_id)
    assert gone.value.status == 404
