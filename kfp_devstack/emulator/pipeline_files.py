"""Reading uploaded pipeline packages and package URLs, as the server accepts them.

An upload is a YAML or JSON file, or a ``.zip`` / ``.tar.gz`` holding one; anything
else is refused with the server's message. ``CreatePipelineVersion`` fetches its
``package_url`` (http, https or file).
"""

from __future__ import annotations

import io
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

MAX_PIPELINE_BYTES = 32 * 1024 * 1024
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")
_FETCH_TIMEOUT_SECONDS = 10


class PipelineFileError(ValueError):
    pass


def read_pipeline_file(file_name: str, content: bytes) -> str:
    if len(content) > MAX_PIPELINE_BYTES:
        raise PipelineFileError(f"the pipeline file is larger than {MAX_PIPELINE_BYTES} bytes")
    if content.startswith(b"PK\x03\x04"):
        return _from_zip(content)
    if content.startswith(b"\x1f\x8b"):
        return _from_tarball(content)
    if file_name.lower().endswith(_SPEC_SUFFIXES):
        return content.decode("utf-8")
    raise PipelineFileError("Unexpected pipeline file format. Support .zip, .tar.gz or YAML.")


def fetch_package(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return read_pipeline_file(parsed.path, Path(parsed.path).read_bytes())
    if parsed.scheme not in ("http", "https"):
        raise PipelineFileError(f"unsupported package URL scheme in {url!r}")
    with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_SECONDS) as response:
        return read_pipeline_file(parsed.path, response.read(MAX_PIPELINE_BYTES + 1))


def _from_zip(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = [name for name in archive.namelist() if name.lower().endswith(_SPEC_SUFFIXES)]
        if len(names) != 1:
            raise PipelineFileError("the zip file must hold exactly one pipeline YAML file")
        return archive.read(names[0]).decode("utf-8")


def _from_tarball(content: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.lower().endswith(_SPEC_SUFFIXES)]
        if len(members) != 1:
            raise PipelineFileError("the tarball must hold exactly one pipeline YAML file")
        extracted = archive.extractfile(members[0])
        assert extracted is not None
        return extracted.read().decode("utf-8")
