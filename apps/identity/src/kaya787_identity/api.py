"""HTTP routes of identity: translate requests to use cases, nothing more."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from kaya787_kit.auth import require_scopes
from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem, problem_responses
from pydantic import BaseModel, ConfigDict, Field

from kaya787_identity.code_flow import CodeFlow
from kaya787_identity.domain import ADMIN_SCOPE, USER_SCOPES
from kaya787_identity.oauth import oauth_json
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.pkce import CHALLENGE_METHOD, OPS_SCOPE
from kaya787_identity.responses import (
    Discovery,
    Jwks,
    OAuthErrorOut,
    Revocations,
    RevocationStatus,
    Revoked,
    RotatedKeys,
    TokenOut,
    UserOut,
)
from kaya787_identity.service import IdentityService

public = APIRouter(tags=["identity"])
internal = APIRouter(prefix="/internal", tags=["internal"])

FORM = "application/x-www-form-urlencoded"
GRANT_TYPES = ("password", "refresh_token", "client_credentials", "authorization_code")


def _service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identity
    return service


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    email: str = Field(min_length=3, max_length=320)
    # Bounded here so an oversized password is a 422 before hashing is ever attempted.
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(default=None, max_length=100)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json_only(request: Request) -> None:
    if _media_type(request) != "application/json":
        raise Problem(415, "unsupported_media_type", "Send the body as application/json.")


@public.post(
    "/api/v1/auth/register",
    status_code=201,
    dependencies=[Depends(_json_only)],
    responses={201: {"model": UserOut}, **problem_responses(409, 415, 422)},
)
async def register(body: RegisterRequest, request: Request) -> JSONResponse:
    user = await _service(request).register(body.email, body.password, body.display_name)
    return JSONResponse(user.public(), status_code=201, headers={"Location": "/api/v1/users/me"})


@public.get("/api/v1/users/me", responses=problem_responses(401, 403, 404))
async def me(
    request: Request, principal: Annotated[Principal, Depends(require_scopes("profile"))]
) -> UserOut:
    return UserOut(**(await _service(request).me(principal)).public())


async def _form(request: Request) -> dict[str, str]:
    if _media_type(request) != FORM:
        raise OAuthError("invalid_request", f"Send the parameters as {FORM}.")
    try:
        pairs = parse_qsl(
            (await request.body()).decode(), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The body is not valid UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"Parameter {name!r} is repeated.")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"Parameter {name!r} is required.")
    return value


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials.") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials.")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        return unquote(client_id), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorOut, "description": "RFC 6749 section 5.2 error."},
    401: {"model": OAuthErrorOut, "description": "Client authentication failed."},
    429: {"model": OAuthErrorOut, "description": "Locked out; see Retry-After."},
}


@public.post("/oauth2/token", responses={200: {"model": TokenOut}, **_OAUTH_ERRORS})
async def token(request: Request) -> JSONResponse:
    form = await _form(request)
    grant = _required(form, "grant_type")
    service = _service(request)
    scope = form.get("scope")
    if grant == "password":
        body = await service.password_grant(
            _required(form, "username"), _required(form, "password"), scope
        )
    elif grant == "refresh_token":
        body = await service.refresh_grant(_required(form, "refresh_token"), scope)
    elif grant == "client_credentials":
        client_id, secret = _client_credentials(request, form)
        body = await service.client_credentials_grant(client_id, secret, scope)
    elif grant == "authorization_code":
        flow: CodeFlow = request.app.state.code_flow
        body = await flow.exchange(
            _required(form, "code"),
            _required(form, "redirect_uri"),
            _required(form, "client_id"),
            _required(form, "code_verifier"),
        )
    else:
        raise OAuthError("unsupported_grant_type", f"Supported: {', '.join(GRANT_TYPES)}.")
    return oauth_json(body)


@public.post("/oauth2/revoke", responses={200: {"model": Revoked}, 400: _OAUTH_ERRORS[400]})
async def revoke(request: Request) -> JSONResponse:
    form = await _form(request)
    await _service(request).revoke(_required(form, "token"))
    return oauth_json({})


@public.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> Discovery:
    issuer: str = request.app.state.issuer
    return Discovery.model_validate(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth2/authorize",
            "token_endpoint": f"{issuer}/oauth2/token",
            "revocation_endpoint": f"{issuer}/oauth2/revoke",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": sorted(USER_SCOPES | {ADMIN_SCOPE, OPS_SCOPE}),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": [CHALLENGE_METHOD],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "exp",
                "iat",
                "nbf",
                "jti",
                "scope",
                "client_id",
            ],
        }
    )


@public.get("/.well-known/jwks.json", responses={200: {"model": Jwks}})
async def jwks(request: Request) -> JSONResponse:
    document = await _service(request).jwks()
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})


@internal.get("/revocations")
async def revoked_tokens(request: Request) -> Revocations:
    """Every revoked access token not expired yet: the other apps' revocation feed."""
    return Revocations(revoked=await _service(request).revoked_tokens())


@internal.get("/revocations/{token_id}")
async def revocation_status(token_id: str, request: Request) -> RevocationStatus:
    return RevocationStatus(revoked=await _service(request).is_revoked(token_id))


@internal.post("/admin/signing-keys/rotate")
async def rotate(
    request: Request, _: Annotated[Principal, Depends(require_scopes(ADMIN_SCOPE))]
) -> RotatedKeys:
    return RotatedKeys(**await _service(request).rotate_signing_key())
