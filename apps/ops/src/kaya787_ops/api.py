"""HTTP routes of the ops console: translate requests to use cases, nothing more."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem

from kaya787_ops.domain import InvalidInput
from kaya787_ops.service import NotFound, OpsConsole
from kaya787_ops.signin import LOGIN_TTL_SECONDS, SESSION_COOKIE, STATE_COOKIE, SignIn

STATIC = resources.files("kaya787_ops") / "static"

pages = APIRouter(include_in_schema=False)
data = APIRouter(prefix="/api", tags=["ops"])


def _console(request: Request) -> OpsConsole:
    console: OpsConsole = request.app.state.console
    return console


def _signin(request: Request) -> SignIn:
    signin: SignIn = request.app.state.signin
    return signin


async def _operator(request: Request) -> Principal:
    return await _signin(request).principal(request)


Operator = Annotated[Principal, Depends(_operator)]


def _secure(request: Request) -> bool:
    return bool(request.app.state.secure_cookies)


@pages.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@pages.get("/", response_model=None)
async def index(request: Request) -> Response:
    # The page itself is static; without a session it would only show 401s, so go sign in.
    if not request.cookies.get(SESSION_COOKIE):
        return RedirectResponse("/auth/login", status_code=303)
    return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-store"})


@pages.get("/auth/login")
async def login(request: Request) -> RedirectResponse:
    url, state = _signin(request).start()
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=LOGIN_TTL_SECONDS,
        path="/auth",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@pages.get("/auth/callback")
async def callback(
    request: Request,
    state: Annotated[str, Query(min_length=1, max_length=128)],
    code: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=64)] = None,
) -> RedirectResponse:
    if code is None:
        # Identity sent the browser back without a code (access_denied for a user
        # without ops:read, or a refused request): say so, never loop back to sign-in.
        raise Problem(403, "sign_in_refused", f"Identity refused the sign-in: {error}.")
    token = await _signin(request).finish(code, state, request.cookies.get(STATE_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(STATE_COOKIE, path="/auth")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=15 * 60,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@pages.post("/auth/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/auth/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@data.get("/whoami")
async def whoami(operator: Operator) -> dict[str, Any]:
    return {"subject": operator.subject, "scopes": sorted(operator.scopes)}


@data.get("/apps")
async def apps(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).apps()


@data.get("/apps/{app_id}")
async def app(app_id: str, request: Request, _: Operator) -> dict[str, Any]:
    try:
        return await _console(request).app(app_id)
    except InvalidInput as exc:
        raise Problem(422, "invalid_app_id", str(exc)) from exc
    except NotFound as exc:
        raise Problem(404, "app_not_found", str(exc)) from exc


@data.get("/control-plane")
async def control_plane(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).control_plane()


@data.get("/components")
async def components(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).components()


@data.get("/configurations")
async def configurations(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).configurations()


@data.get("/traffic")
async def traffic(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).traffic()


@data.get("/transactions/pending")
async def pending(request: Request, _: Operator) -> dict[str, Any]:
    return await _console(request).pending_transactions()


@data.get("/traces")
async def find_trace(
    request: Request,
    _: Operator,
    q: Annotated[str, Query(min_length=1, max_length=100)],
) -> dict[str, Any]:
    """`q` is a trace id or a transaction (transfer) id."""
    console = _console(request)
    try:
        try:
            return await console.trace(q)
        except (InvalidInput, NotFound):
            return await console.trace_of_transaction(q)
    except InvalidInput as exc:
        raise Problem(422, "invalid_query", str(exc)) from exc
    except NotFound as exc:
        raise Problem(404, "trace_not_found", str(exc)) from exc
