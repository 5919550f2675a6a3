"""Reading a file field out of a ``multipart/form-data`` body."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.parser import BytesParser


@dataclass(frozen=True)
class UploadedFile:
    file_name: str
    content: bytes


def form_file(content_type: str, body: bytes, field: str) -> UploadedFile | None:
    """The named file field, or ``None`` when the body is not multipart or has no such field."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") != field:
            continue
        payload = part.get_payload(decode=True)
        return UploadedFile(file_name=part.get_filename() or field, content=payload or b"")
    return None
