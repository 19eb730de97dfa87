"""Fetching a Label Studio task's image: from the project's Label Studio host only, with its token, size-bounded.

No other URL is ever fetched: a path (`/data/upload/...`) resolves against the host, an absolute URL
must be on it, and a redirect is followed only while it stays on it (at most `MAX_REDIRECTS`). The
environment's proxy settings are not used: the host is reached directly.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import IO

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hazardvision.errors import TaskImageUnavailable

MAX_REDIRECTS = 3
_CHUNK = 1 << 16


class LabelStudioSettings(BaseModel):
    """How the service answers Label Studio as its ML backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None, description="Label Studio's address as this service reaches it, e.g. http://label-studio:8080: "
        "task images are fetched from it alone, whatever host a project's setup names (that host's absolute URLs are "
        "read as this one's). None: each project's host is the one its setup names.")
    access_token: SecretStr | None = Field(
        default=None, description="Label Studio access token sent with every image fetch (Authorization: Token ...). "
        "None: the token a project's setup sends.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Label Studio label -> catalogue class, for labels that are neither a class "
        "name nor a class's English name, e.g. {\"Hard hat missing\": \"no_helmet\"}.")
    max_tasks: int = Field(default=100, ge=1, le=1000, description="Most tasks in one POST /label-studio/predict "
                           "(Label Studio sends up to 100 when it retrieves predictions in bulk).")
    fetch_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="Longest wait for one task "
                                         "image's connection or data.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            origin_of(value)
        return value


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL; `ValueError` for anything else."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    port = parts.port  # ValueError for a port that is not a number
    default = 80 if parts.scheme == "http" else 443
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True)
class TaskImageSource:
    """A project's Label Studio host (and the names it also goes by) and its token."""

    origin: str
    token: str | None
    aliases: frozenset[str] = frozenset()
    """Other origins of the same Label Studio (the host its setup named, when settings pin another)."""

    def url_of(self, reference: str) -> str:
        """The URL to fetch for a task's image reference; `TaskImageUnavailable` for one off the host."""
        reference = reference.strip()
        if reference.startswith("/") and not reference.startswith("//"):
            return self.origin + _quoted(reference)
        try:
            origin = origin_of(reference)
        except ValueError:
            scheme = reference.split(":", 1)[0] if ":" in reference else "a relative path"
            raise TaskImageUnavailable(
                f"the image {reference[:120]!r} is {scheme}, not a file of Label Studio at {self.origin}; this "
                "service fetches task images from that host only (connect cloud storage to Label Studio so that "
                "tasks point at it)") from None
        if origin in {self.origin, *self.aliases}:  # rebuilt on the host: no user info, no fragment
            parts = urllib.parse.urlsplit(reference)
            return self.origin + _quoted(urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))
        raise TaskImageUnavailable(f"the image {reference[:120]!r} is on {origin}, not on Label Studio's host "
                                   f"{self.origin}; this service fetches task images from that host only")


def _quoted(path: str) -> str:
    """The path and query with characters HTTP cannot carry (spaces, non-ASCII file names) percent-encoded."""
    return urllib.parse.quote(path, safe="/?&=;:@+,$!~*'()%")


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the host it came from, and a few times at most."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(  # noqa: PLR0917  (urllib's signature)
            self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: http.client.HTTPMessage,
            newurl: str) -> urllib.request.Request | None:
        try:
            target = origin_of(newurl)
        except ValueError:
            target = newurl
        if target != origin_of(req.full_url):
            raise TaskImageUnavailable(f"{req.full_url} redirects to {target}, another host: refused (task images "
                                       "come from Label Studio's host only)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _SameOrigin())


def fetch_task_image(source: TaskImageSource, reference: str, *, max_bytes: int, timeout: float) -> bytes:
    """The image's bytes (blocking: run it in a worker thread); `TaskImageUnavailable` with the reason."""
    url = source.url_of(reference)
    request = urllib.request.Request(url, headers={"Accept": "image/*"})
    if source.token:
        request.add_header("Authorization", f"Token {source.token}")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise TaskImageUnavailable(f"{url} is {int(declared)} bytes, above the limit of {max_bytes} bytes "
                                           "per photo (max_upload_bytes)")
            return _read_bounded(response, url, max_bytes)
    except urllib.error.HTTPError as error:
        hint = " (check the Label Studio token)" if error.code in (401, 403) else ""
        raise TaskImageUnavailable(f"{url} answered HTTP {error.code} {error.reason}{hint}") from None
    except urllib.error.URLError as error:
        raise TaskImageUnavailable(f"{url} cannot be reached: {error.reason}") from None
    except (TimeoutError, http.client.HTTPException, OSError, ValueError) as error:
        raise TaskImageUnavailable(f"{url} could not be read: {type(error).__name__}: {error}") from None


def _read_bounded(response: IO[bytes], url: str, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TaskImageUnavailable(f"{url} is larger than the limit of {max_bytes} bytes per photo "
                                       "(max_upload_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)
