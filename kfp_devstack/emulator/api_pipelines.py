"""PipelineService and PipelineUploadService (docs/emulator.md §4.2).

* ``name`` is unique per namespace and a version's ``name`` per pipeline (409); each
  of ``name``/``display_name`` defaults to the other, and an upload's name falls back
  to the file name.
* ``GET /pipelines/names/{name}`` returns the newest pipeline with that name
  (``ORDER BY CreatedAtInSec DESC``); in single-user mode the namespace is ignored.
* ``GetPipelineVersion`` ignores the ``pipeline_id`` in its path.
* The upload endpoints answer errors in their own shape (:class:`UploadError`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.errors import ApiError, UploadError
from kfp_devstack.emulator.listing import PIPELINE_VERSIONS, PIPELINES, parse_list_request, run_list
from kfp_devstack.emulator.models import Pipeline, PipelineVersion
from kfp_devstack.emulator.multipart import UploadedFile
from kfp_devstack.emulator.pipeline_files import PipelineFileError, fetch_package, read_pipeline_file
from kfp_devstack.emulator.pipeline_spec import PipelineSpec, PipelineSpecError, UnknownTemplateFormat
from kfp_devstack.emulator.rendering import render_list, render_pipeline, render_pipeline_version
from kfp_devstack.emulator.request_decoding import PIPELINE, PIPELINE_VERSION, decode_body
from kfp_devstack.emulator.store import Store
from kfp_devstack.emulator.tenancy import Tenancy
from kfp_devstack.emulator.timestamps import now_seconds

_UPLOAD_FAILED = "Failed to create a pipeline and a pipeline version"
_VERSION_UPLOAD_FAILED = "Failed to create a pipeline version"


class PipelineService:
    def __init__(self, store: Store, tenancy: Tenancy) -> None:
        self._store = store
        self._tenancy = tenancy

    # --- uploads -------------------------------------------------------------------------------

    def upload(self, upload: UploadedFile | None, query: Mapping[str, str]) -> dict[str, Any]:
        if upload is None:
            raise UploadError(400, "Failed to read pipeline from file")
        spec = _parse_upload(upload, _UPLOAD_FAILED)
        tags = _parse_tags(query.get("tags", ""))
        namespace = self._tenancy.namespace(query.get("namespace", ""))
        name = query.get("name") or query.get("display_name") or upload.file_name
        display_name = query.get("display_name") or name
        description = query.get("description", "")
        with self._store.lock:
            if self._pipeline_named(name, namespace) is not None:
                raise UploadError(409, _UPLOAD_FAILED)
            created_at = now_seconds()
            pipeline = Pipeline(
                pipeline_id=str(uuid.uuid4()),
                name=name,
                display_name=display_name,
                description=description,
                namespace=namespace,
                created_at=created_at,
                tags=tags,
            )
            self._store.save_pipeline(pipeline)
            self._store.save_version(
                PipelineVersion(
                    pipeline_version_id=str(uuid.uuid4()),
                    pipeline_id=pipeline.pipeline_id,
                    name=name,
                    display_name=display_name,
                    description=description,
                    created_at=created_at,
                    spec_digest=self._store.add_spec(spec),
                    code_source_url=query.get("code_source_url", ""),
                )
            )
        return render_pipeline(pipeline)

    def upload_version(self, upload: UploadedFile | None, query: Mapping[str, str]) -> dict[str, Any]:
        if upload is None:
            raise UploadError(400, _VERSION_UPLOAD_FAILED)
        spec = _parse_upload(upload, _VERSION_UPLOAD_FAILED)
        pipeline_id = query.get("pipelineid", "")
        tags = _parse_tags(query.get("tags", ""))
        name = query.get("name") or query.get("display_name") or upload.file_name
        with self._store.lock:
            if not pipeline_id or pipeline_id not in self._store.pipelines:
                raise UploadError(400, _VERSION_UPLOAD_FAILED)
            if self._version_named(pipeline_id, name) is not None:
                raise UploadError(409, _VERSION_UPLOAD_FAILED)
            version = PipelineVersion(
                pipeline_version_id=str(uuid.uuid4()),
                pipeline_id=pipeline_id,
                name=name,
                display_name=query.get("display_name") or name,
                description=query.get("description", ""),
                created_at=now_seconds(),
                spec_digest=self._store.add_spec(spec),
                code_source_url=query.get("code_source_url", ""),
                tags=tags,
            )
            self._store.save_version(version)
        return render_pipeline_version(version, spec)

    # --- pipelines -----------------------------------------------------------------------------

    def create(self, raw_body: bytes) -> dict[str, Any]:
        body = decode_body(PIPELINE, raw_body)
        name = body.get("name") or body.get("display_name", "")
        namespace = self._tenancy.namespace(body.get("namespace", ""))
        with self._store.lock:
            if not name:
                raise errors.invalid_input("Pipeline name cannot be empty").wrap(
                    "Failed to create a pipeline"
                )
            if self._pipeline_named(name, namespace) is not None:
                raise errors.already_exists(
                    f"Failed to create a new pipeline. The name {name} already exist. "
                    "Please specify a new name"
                ).wrap("Failed to create a pipeline")
            pipeline = Pipeline(
                pipeline_id=str(uuid.uuid4()),
                name=name,
                display_name=body.get("display_name") or name,
                description=body.get("description", ""),
                namespace=namespace,
                created_at=now_seconds(),
                tags=dict(body.get("tags", {})),
            )
            self._store.save_pipeline(pipeline)
        return render_pipeline(pipeline)

    def fetch(self, pipeline_id: str) -> Pipeline:
        with self._store.lock:
            pipeline = self._store.pipelines.get(pipeline_id)
        if pipeline is None:
            raise errors.not_found("Pipeline", pipeline_id).wrap(f"Failed to fetch pipeline {pipeline_id}")
        return pipeline

    def get(self, pipeline_id: str) -> dict[str, Any]:
        with self._store.lock:
            pipeline = self._store.pipelines.get(pipeline_id)
        if pipeline is None:
            raise (
                errors.not_found("Pipeline", pipeline_id)
                .wrap(f"Failed to get a pipeline with id {pipeline_id}")
                .wrap(f"Failed to get a pipeline {pipeline_id}. Check error stack")
            )
        return render_pipeline(pipeline)

    def get_by_name(self, name: str, namespace: str) -> dict[str, Any]:
        namespace = self._tenancy.namespace(namespace)
        with self._store.lock:
            pipeline = self._pipeline_named(name, namespace)
        if pipeline is None:
            raise errors.not_found("Namespace/Pipeline", f"{namespace}/{name}").wrap(
                "Failed to get a pipeline by name"
            )
        return render_pipeline(pipeline)

    def list(
        self, *, namespace: str, page_token: str, page_size: int, sort_by: str, filter_text: str
    ) -> dict[str, Any]:
        query = parse_list_request(
            PIPELINES, page_token=page_token, page_size=page_size, sort_by=sort_by, filter_text=filter_text
        )
        namespace = self._tenancy.namespace(namespace)
        with self._store.lock:
            result = run_list(query, [p for p in self._store.pipelines.values() if p.namespace == namespace])
            rendered = [render_pipeline(pipeline) for pipeline in result.items]
        return render_list("pipelines", rendered, result.total_size, result.next_page_token)

    def delete(self, pipeline_id: str, cascade: bool) -> dict[str, Any]:
        with self._store.lock:
            try:
                self.fetch(pipeline_id)
            except ApiError as err:
                raise err.wrap("Failed to delete a pipeline") from None
            versions = [v for v in self._store.versions.values() if v.pipeline_id == pipeline_id]
            if versions and not cascade:
                raise errors.failed_precondition(
                    f"Pipeline {pipeline_id} has {len(versions)} pipeline version(s). "
                    "Delete them first or delete with cascade=true"
                ).wrap("Failed to delete a pipeline")
            for version in versions:
                self._store.delete_version(version.pipeline_version_id)
            self._store.delete_pipeline(pipeline_id)
        return {}

    # --- versions ------------------------------------------------------------------------------

    def create_version(self, pipeline_id: str, raw_body: bytes) -> dict[str, Any]:
        body = decode_body(PIPELINE_VERSION, raw_body)
        if not body.get("pipeline_id"):
            # The server reads the parent from the body's version, not from the path.
            raise errors.invalid_input("Failed to create a pipeline version. Parent pipeline id is empty")
        pipeline_id = body["pipeline_id"]
        url = (body.get("package_url") or {}).get("pipeline_url", "")
        if url and "pipeline_spec" not in body and urlparse(url).scheme != "https":
            # The server fetches only https URLs (from allowed domains, checked before anything else).
            raise errors.invalid_input("Pipeline URL validation failed").wrap(
                "Failed to create a pipeline version. Check error stack"
            )
        try:
            self.fetch(pipeline_id)
            spec = _version_spec(body)
        except ApiError as err:
            raise err.wrap("Failed to create a pipeline version") from None
        name = body.get("name") or body.get("display_name", "")
        with self._store.lock:
            if not name:
                raise errors.invalid_input("Pipeline version name cannot be empty").wrap(
                    "Failed to create a pipeline version"
                )
            if self._version_named(pipeline_id, name) is not None:
                raise errors.already_exists(
                    f"Failed to create a new pipeline version. The name {name} already exist. "
                    "Please specify a new name"
                ).wrap("Failed to create a pipeline version")
            version = PipelineVersion(
                pipeline_version_id=str(uuid.uuid4()),
                pipeline_id=pipeline_id,
                name=name,
                display_name=body.get("display_name") or name,
                description=body.get("description", ""),
                created_at=now_seconds(),
                spec_digest=self._store.add_spec(spec),
                code_source_url=body.get("code_source_url", ""),
                package_url=(body.get("package_url") or {}).get("pipeline_url", ""),
                tags=dict(body.get("tags", {})),
            )
            self._store.save_version(version)
        return render_pipeline_version(version, spec)

    def fetch_version(self, version_id: str) -> PipelineVersion:
        with self._store.lock:
            version = self._store.versions.get(version_id)
        if version is None:
            raise errors.not_found("PipelineVersion", version_id).wrap(
                f"Failed to fetch pipeline version {version_id}"
            )
        return version

    def latest_version(self, pipeline_id: str) -> PipelineVersion | None:
        """``GetLatestPipelineVersion``: the newest by creation second, UUID as tie-break."""
        with self._store.lock:
            versions = [v for v in self._store.versions.values() if v.pipeline_id == pipeline_id]
        return max(versions, key=lambda v: (v.created_at, v.pipeline_version_id), default=None)

    def get_version(self, version_id: str) -> dict[str, Any]:
        try:
            version = self.fetch_version(version_id)
        except ApiError as err:
            raise err.wrap("Failed to get a pipeline version") from None
        return render_pipeline_version(version, self._store.spec(version.spec_digest))

    def list_versions(
        self, pipeline_id: str, *, page_token: str, page_size: int, sort_by: str, filter_text: str
    ) -> dict[str, Any]:
        query = parse_list_request(
            PIPELINE_VERSIONS,
            page_token=page_token,
            page_size=page_size,
            sort_by=sort_by,
            filter_text=filter_text,
        )
        try:
            self.fetch(pipeline_id)
        except ApiError as err:
            raise err.wrap("Failed to list pipeline versions") from None
        with self._store.lock:
            result = run_list(
                query, [v for v in self._store.versions.values() if v.pipeline_id == pipeline_id]
            )
            rendered = [render_pipeline_version(v, self._store.spec(v.spec_digest)) for v in result.items]
        return render_list("pipeline_versions", rendered, result.total_size, result.next_page_token)

    def delete_version(self, version_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                self.fetch_version(version_id)
            except ApiError as err:
                raise err.wrap("Failed to delete a pipeline version") from None
            self._store.delete_version(version_id)
        return {}

    # --- helpers -------------------------------------------------------------------------------

    def _pipeline_named(self, name: str, namespace: str) -> Pipeline | None:
        candidates = [
            p for p in self._store.pipelines.values() if p.name == name and p.namespace == namespace
        ]
        return max(candidates, key=lambda p: p.created_at, default=None)

    def _version_named(self, pipeline_id: str, name: str) -> PipelineVersion | None:
        return next(
            (v for v in self._store.versions.values() if v.pipeline_id == pipeline_id and v.name == name),
            None,
        )


def _parse_upload(upload: UploadedFile, failure: str) -> PipelineSpec:
    try:
        return PipelineSpec.from_yaml(read_pipeline_file(upload.file_name, upload.content))
    except UnknownTemplateFormat as err:  # the server's template check comes first, unwrapped
        raise UploadError(400, str(err)) from None
    except (PipelineFileError, PipelineSpecError, UnicodeDecodeError) as err:
        raise UploadError(400, f"{failure}: {err}") from None


def _parse_tags(text: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        tags = json.loads(text)
    except json.JSONDecodeError:
        tags = None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise UploadError(
            400, "Failed to parse tags query parameter. Expected JSON object with string keys and values"
        )
    return tags


def _version_spec(body: Mapping[str, Any]) -> PipelineSpec:
    url = (body.get("package_url") or {}).get("pipeline_url", "")
    try:
        if "pipeline_spec" in body:
            return PipelineSpec.from_document(body["pipeline_spec"])
        if not url:
            raise errors.invalid_input("Pipeline version must have a package_url or a pipeline_spec")
        return PipelineSpec.from_yaml(fetch_package(url))
    except (PipelineFileError, PipelineSpecError, OSError, UnicodeDecodeError) as err:
        raise errors.invalid_input(
            f"Failed to read the pipeline spec from {url or 'pipeline_spec'}: {err}"
        ) from None
