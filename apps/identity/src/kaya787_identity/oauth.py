"""RFC 6749 error responses for the OAuth endpoints (they are not problem+json)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class OAuthError(Exception):
    error: str
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)


def oauth_json(
    body: dict[str, object], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


async def _on_oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return oauth_json(
        {"error": exc.error, "error_description": exc.description}, exc.status, exc.headers
    )


def install_oauth_errors(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, _on_oauth_error)
