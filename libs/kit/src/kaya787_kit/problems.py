"""RFC 9457 problem+json errors: one shape for every error any app returns."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kaya787_kit.circuit_breaker import CircuitOpen
from kaya787_kit.errors import (
    AppError,
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    Unauthenticated,
)
from kaya787_kit.state import StateStoreError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://kaya787.dev/problems/"

_log = logging.getLogger("kaya787.problems")

_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


@dataclass
class Problem(Exception):
    """Raise from a use case or route; the handler turns it into problem+json."""

    status: int
    code: str
    detail: str
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of every app is answered (OpenAPI only)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable reason (docs/api.md).")
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries saying these statuses answer problem+json."""
    return {
        status: {
            "model": ProblemDetails,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def problem_body(
    status: int, code: str, detail: str, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, code, detail, title, **extra)
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        title=exc.title,
        headers=exc.headers or None,
        instance=request.url.path,
        **exc.extra,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem_response(
        exc.status_code,
        _CODES.get(exc.status_code, "error"),
        detail,
        headers=dict(exc.headers) if exc.headers else None,
        instance=request.url.path,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: echoing the rejected input could leak a password.
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem_response(
        422,
        "validation_error",
        "The request did not pass validation.",
        instance=request.url.path,
        errors=errors,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "internal_error", "An unexpected error occurred.", instance=request.url.path
    )


async def _on_store_failure(request: Request, exc: Exception) -> JSONResponse:
    _log.error("state store failure on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        503,
        "unavailable",
        "A backing store is unavailable; retry later.",
        headers={"Retry-After": "2"},
        instance=request.url.path,
    )


async def _on_upstream_unreachable(request: Request, exc: Exception) -> JSONResponse:
    # Our sidecar (or the peer behind it) did not answer in time, or every connection to it
    # is busy: the app is overloaded, not broken. The caller retries (with its key).
    _log.warning(
        "sidecar call failed on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return problem_response(
        503,
        "upstream_unavailable",
        "A service this request needs is busy or unreachable; retry later.",
        headers={"Retry-After": "1"},
        instance=request.url.path,
    )


async def _on_circuit_open(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CircuitOpen)
    # Answered at once, without calling the peer: it failed repeatedly and is given time to
    # recover. Which peer is the operator's business (logs, metrics), not the client's.
    seconds = max(1, math.ceil(exc.retry_after))
    return problem_response(
        503,
        "circuit_open",
        f"A service this request needs is failing; it is not called for {seconds} s. "
        "Retry after that.",
        headers={"Retry-After": str(seconds)},
        instance=request.url.path,
    )


async def _on_upstream_status(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, httpx.HTTPStatusError)
    if exc.response.status_code >= 500:
        # A peer failing (its store down, it restarting) is as transient to our caller as a
        # peer not answering.
        return await _on_upstream_unreachable(request, exc)
    return await _on_unexpected(request, exc)


# Each kind of refusal a use case raises has one status, decided here and nowhere else.
_STATUS_OF: tuple[tuple[type[AppError], int], ...] = (
    (BadRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
    (Throttled, 429),
    (Busy, 503),
)


def status_of(error: AppError) -> int:
    return next((status for kind, status in _STATUS_OF if isinstance(error, kind)), 422)


def error_for_status(status: int, code: str, detail: str) -> AppError:
    """A peer's refusal (its status and problem code) as the same kind of error here: the
    table above read backwards; any 5xx is Busy, an unknown 4xx Invalid."""
    if status >= 500:
        return Busy(code, detail)
    kind = next((kind for kind, known in _STATUS_OF if known == status), Invalid)
    return kind(code, detail)


def problem_of(error: AppError) -> Problem:
    """The problem+json a use case's refusal becomes at the edge."""
    headers: dict[str, str] = {}
    if isinstance(error, Busy | Throttled):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = f'Bearer error="{error.code}"'
    return Problem(
        status_of(error), error.code, error.detail, extra=dict(error.extra), headers=headers
    )


async def _on_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return await _on_problem(request, problem_of(exc))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StateStoreError, _on_store_failure)
    app.add_exception_handler(CircuitOpen, _on_circuit_open)
    # Timeouts, refused or broken connections, a full pool.
    app.add_exception_handler(httpx.TransportError, _on_upstream_unreachable)
    app.add_exception_handler(httpx.HTTPStatusError, _on_upstream_status)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)
