"""Domain errors as HTTP answers: the one table of status codes, and the handlers that use it.

Every answer is JSON `{"error": ..., "message": ...}`, except on the DeepStack API's paths, which answer
DeepStack's `{"success": false, "error": ...}` with DeepStack's status codes; nothing answers with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from hazardvision import errors as e
from hazardvision.service.schemas.common import ErrorBody
from hazardvision.service.schemas.deepstack import PREFIX as DEEPSTACK
from hazardvision.service.schemas.deepstack import DeepStackError, deepstack_status

log = logging.getLogger("hazardvision.service")

STATUS: Mapping[type[e.HazardVisionError], int] = {
    e.InvalidImage: 400,
    e.ImageTooLarge: 413,
    e.UnsupportedAspectRatio: 422,
    e.InvalidUpload: 422,
    e.UnsupportedUpload: 415,
    e.UploadTimeout: 408,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.TooManySignIns: 429,
    e.UnknownModel: 404,
    e.UnknownCase: 404,
    e.UnknownScan: 404,
    e.UnknownFinding: 404,
    e.UnknownApiKey: 404,
    e.UnknownCamera: 404,
    e.UnknownAlert: 404,
    e.UnknownInspection: 404,
    e.UnknownRectification: 404,
    e.UnknownVideoJob: 404,
    e.UnknownWebhookFailure: 404,
    e.ReviewConflict: 409,
    e.PlaceConflict: 409,
    e.PromotionRefused: 409,
    e.InvalidFrame: 409,
    e.AlertConflict: 409,
    e.ApiKeyConflict: 409,
    e.InspectionConflict: 409,
    e.RectificationConflict: 409,
    e.VideoJobConflict: 409,
    e.WebhookFailureConflict: 409,
    e.ScanProtected: 409,
    e.InvalidModel: 422,
    e.InvalidSetting: 422,
    e.CatalogueError: 422,
    e.DatasetError: 422,
    e.ClassMappingError: 422,
    e.InvalidWebhook: 422,
    e.StreamRefused: 422,
    e.InvalidReview: 422,
    e.InvalidLabelConfig: 422,
    e.TaskImageUnavailable: 422,
    e.IdempotencyKeyReused: 422,
    e.ApiKeyError: 422,
    e.InferenceError: 503,
    e.BankError: 503,
    e.AuditError: 503,
    e.ModelsLoading: 503,
    e.RequestTimeout: 503,
    e.HazardVisionError: 503,
}
"""Status of each domain error; a subclass not listed takes its nearest listed base's."""


def status_of(error: e.HazardVisionError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 503


def error_body(kind: str, message: str, details: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    return ErrorBody(error=kind, message=message, details=list(details) if details else None).model_dump(
        exclude_none=True)


def answer(path: str, status: int, kind: str, message: str, details: Sequence[dict[str, Any]] | None = None
           ) -> tuple[int, dict[str, Any]]:
    """The status and body of an error on `path`: the service's own, or DeepStack's on its paths."""
    if path == DEEPSTACK or path.startswith(f"{DEEPSTACK}/"):
        return deepstack_status(status), DeepStackError(error=message).model_dump()
    return status, error_body(kind, message, details)


def _json(request: Request, status: int, kind: str, message: str, *,
          details: Sequence[dict[str, Any]] | None = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    code, body = answer(request.url.path, status, kind, message, details)
    return JSONResponse(body, code, headers=headers)


def _domain(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, e.HazardVisionError)
    status = status_of(error)
    if status >= 500:
        log.warning("request failed: %s: %s", type(error).__name__, error)
    headers = {"Retry-After": "5"} if status == 503 else None
    if status in (401, 403):
        denied = getattr(getattr(request.app.state, "runtime", None), "denied", None)
        if denied is not None:  # this handler runs in a worker thread: the audit append may block
            denied.record_request(request, status, f"{type(error).__name__}: {error}")
    if isinstance(error, e.TooManySignIns):
        headers = {"Retry-After": str(error.retry_after)}
    return _json(request, status, type(error).__name__, str(error), headers=headers)


def readable(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message and JSON-safe details of pydantic / FastAPI validation errors."""
    details = []
    for item in errors:
        loc = tuple(item.get("loc", ()))
        msg = str(item.get("msg", "")).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":  # loc holds the character position, not a field
            msg = f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'decode error')} at character " \
                  f"{loc[-1] if loc else '?'})"
            loc = loc[:1]
        where = ".".join(str(part) for part in loc)
        details.append({"loc": where, "msg": msg, "type": str(item.get("type", ""))})
    message = "; ".join(f"{d['loc']}: {d['msg']}" if d["loc"] else d["msg"] for d in details)
    return message or "the request is invalid", details


def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    message, details = readable(error.errors())
    return _json(request, 422, "ValidationError", message, details=details)


_HTTP_KINDS = {400: "InvalidUpload", 404: "NotFound", 405: "MethodNotAllowed", 413: "ImageTooLarge",
               415: "UnsupportedUpload"}


_BODY_UNPARSED = "There was an error parsing the body"
"""FastAPI's 400 for a JSON body it cannot read at all (e.g. bytes that are not UTF-8)."""


def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and error.detail == _BODY_UNPARSED:
        # Answered like any other malformed JSON body (422), which is what the routes document.
        reason = "it is not UTF-8 text" if isinstance(error.__cause__, UnicodeDecodeError) else "it cannot be parsed"
        message = f"the body is not valid JSON ({reason}); send UTF-8 JSON with Content-Type application/json"
        return _json(request, 422, "ValidationError", message, details=[{"loc": "body", "msg": message,
                                                                         "type": "json_invalid"}])
    if error.status_code == 404 and error.detail == "Not Found":
        message = f"no route {request.method} {request.url.path}; see /docs for the API"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
    else:
        message = str(error.detail)
    kind = _HTTP_KINDS.get(error.status_code, "HTTPError")
    headers = error.headers
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return _json(request, error.status_code, kind, message, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Methods some route answers on the request's path (Starlette's own 405 names only the first route's)."""
    routes = request.app.router.routes
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)]


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("internal error: %s: %s", type(error).__name__, error, exc_info=error)
    return _json(request, 500, "InternalError", "the service failed unexpectedly; this is a bug, the log has the "
                 "details")


def install(app: FastAPI) -> None:
    """Answer every error with the JSON body above."""
    app.add_exception_handler(e.HazardVisionError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
