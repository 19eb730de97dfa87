"""A video out of a request, streamed to disk: a multipart `video` field, or a raw video/* body.

The body is never held whole in memory: python-multipart's push parser takes it chunk by chunk
as it arrives, and the file part goes to a file in the home's incoming folder a mebibyte at a
time (the `BodyLimit` middleware bounds the whole body). A request that fails or is refused part-way
leaves no file behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio.to_thread
from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from hazardvision.errors import InvalidUpload, UnsupportedUpload
from hazardvision.home import private_folder, private_opener, write_private_file
from hazardvision.video.sources import VIDEO_SUFFIXES

VIDEO_FIELD = "video"
MAX_FIELDS = 16
MAX_FIELD_BYTES = 4096
FLUSH_BYTES = 1024 * 1024
MEDIA_SUFFIXES = {"video/mp4": ".mp4", "video/x-msvideo": ".avi", "video/avi": ".avi", "video/x-matroska": ".mkv",
                  "video/quicktime": ".mov", "video/x-m4v": ".m4v", "video/webm": ".webm"}


@dataclass
class ArrivedVideo:
    """A video upload on disk, with the form fields that came with it."""

    path: Path
    filename: str
    suffix: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def video_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UnsupportedUpload(f"{filename!r} is not a video file this service reads; send one of "
                                f"{', '.join(VIDEO_SUFFIXES)}")
    return suffix


class _Writer:
    """The file the video goes to, written in large pieces off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] | None = None
        self.pending = bytearray()
        self.size = 0

    def add(self, data: bytes) -> None:
        self.pending += data
        self.size += len(data)

    async def flush(self, *, force: bool = False) -> None:
        if not self.pending or (len(self.pending) < FLUSH_BYTES and not force):
            return
        data, self.pending = bytes(self.pending), bytearray()
        if self.file is None:
            private_folder(self.path.parent)
            self.file = await anyio.to_thread.run_sync(lambda: open(self.path, "wb", opener=private_opener))  # noqa: SIM115
        await anyio.to_thread.run_sync(self.file.write, data)

    async def close(self) -> None:
        await self.flush(force=True)
        if self.file is None:
            private_folder(self.path.parent)
            write_private_file(self.path, b"")
        else:
            await anyio.to_thread.run_sync(self.file.close)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        self.path.unlink(missing_ok=True)


async def receive_video(request: Request, incoming: Path, *, filename: str | None) -> ArrivedVideo:
    """Stream the request's video into `incoming`; `filename` names a raw body (its suffix, else the media type's)."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    media_type = media.decode("latin-1").lower()
    writer = _Writer(incoming / f"{uuid.uuid4().hex}.part")
    try:
        if media_type.startswith("video/"):
            name = filename or f"upload{MEDIA_SUFFIXES.get(media_type, '')}"
            suffix = video_suffix(name)
            async for chunk in request.stream():
                writer.add(chunk)
                await writer.flush()
            await writer.close()
            return ArrivedVideo(writer.path, name, suffix, writer.size)
        if media_type != "multipart/form-data":
            raise UnsupportedUpload(
                f"the body is {media_type or 'untyped'}; send the video as multipart/form-data (file field "
                f"'{VIDEO_FIELD}') or as a raw body with a video/* Content-Type (e.g. video/mp4)")
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidUpload("the multipart form names no boundary")
        arrived = await _receive_form(request, boundary, writer)
        await writer.close()
        return arrived
    except BaseException:
        writer.discard()
        raise


class _Form:
    """The callbacks of python-multipart's push parser: the video part to the writer, text fields to a dict."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.headers: dict[bytes, bytes] = {}
        self.header = [b"", b""]
        self.name = ""
        self.text = bytearray()
        self.is_file = False
        self.fields: dict[str, str] = {}
        self.video: tuple[str, str] | None = None
        """(file name, suffix) of the video part."""
        self.problem: InvalidUpload | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data, "on_part_end": self.on_part_end}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header[0] += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header[1] += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header[0].lower()] = self.header[1]
        self.header = [b"", b""]

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.headers.clear()
        self.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        self.text, self.is_file = bytearray(), False
        file_name = disposition.get(b"filename")
        if self.problem is not None:
            return
        if file_name is not None:
            if self.name != VIDEO_FIELD or self.video is not None:
                self.problem = InvalidUpload(f"unexpected file field {self.name!r}; send one video in the field "
                                             f"'{VIDEO_FIELD}'")
                return
            decoded = Path(file_name.decode("utf-8", "replace")).name or "upload"
            try:
                self.video = (decoded, video_suffix(decoded))
            except InvalidUpload as error:
                self.problem = error
                return
            self.is_file = True
        elif self.name == VIDEO_FIELD:
            self.problem = InvalidUpload(f"the field '{VIDEO_FIELD}' holds text, not a file; attach the video as a "
                                         "file")
        elif self.name in self.fields or len(self.fields) >= MAX_FIELDS:
            self.problem = InvalidUpload(f"the form field {self.name!r} is given twice (or the form has too many "
                                         "fields)")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.problem is not None:
            return
        if self.is_file:
            self.writer.add(data[start:end])
            return
        self.text += data[start:end]
        if len(self.text) > MAX_FIELD_BYTES:
            self.problem = InvalidUpload(f"the form field {self.name!r} is over {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.problem is None and not self.is_file:
            self.fields[self.name] = self.text.decode("utf-8", "replace")


async def _receive_form(request: Request, boundary: bytes, writer: _Writer) -> ArrivedVideo:
    form = _Form(writer)
    parser = MultipartParser(boundary, form.callbacks(), max_header_count=16)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if form.problem is not None:
                raise form.problem
            await writer.flush()
        parser.finalize()
    except MultipartParseError as error:
        raise InvalidUpload(f"the multipart form cannot be read: {error}") from None
    if form.problem is not None:
        raise form.problem
    if form.video is None:
        raise InvalidUpload(f"no video in the form; attach it as the file field '{VIDEO_FIELD}'")
    return ArrivedVideo(writer.path, form.video[0], form.video[1], writer.size, form.fields)
