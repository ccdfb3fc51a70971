"""RFC 6749 error responses for the OAuth endpoints (they are not problem+json)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kaya787_identity.oauth_errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_json(
    body: dict[str, object], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def status_and_headers(error: OAuthError) -> tuple[int, dict[str, str]]:
    """RFC 6749 section 5.2: 400, except a failed client authentication (401 with a
    challenge); a locked-out caller gets 429 with Retry-After."""
    if error.retry_after is not None:
        return 429, {"Retry-After": str(error.retry_after)}
    if error.error == "invalid_client":
        return 401, {"WWW-Authenticate": 'Basic realm="kaya787"'}
    return 400, {}


async def _on_oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    status, headers = status_and_headers(exc)
    return oauth_json({"error": exc.error, "error_description": exc.description}, status, headers)


def install_oauth_errors(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, _on_oauth_error)
