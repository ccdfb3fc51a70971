"""Routes of the authorization endpoint (RFC 6749 §3.1): the sign-in page and its form."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kaya787_identity import login_page
from kaya787_identity.code_flow import CodeFlow, RedirectError, UntrustedRedirect
from kaya787_identity.oauth_errors import OAuthError

router = APIRouter(tags=["oauth2"])

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # The page must never be framed (clickjacking of a password form).
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
MAX_FORM_BYTES = 8 * 1024


def _flow(request: Request) -> CodeFlow:
    flow: CodeFlow = request.app.state.code_flow
    return flow


def _page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _back(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if "?" in redirect_uri else "?"
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{redirect_uri}{joiner}{query}", status_code=303)


def _refused(error: RedirectError) -> RedirectResponse:
    return _back(
        error.redirect_uri,
        {"error": error.error, "error_description": error.description, "state": error.state},
    )


def _untrusted() -> HTMLResponse:
    return _page(
        login_page.error_page("Unknown client or a redirect_uri it has not registered."), 400
    )


def _single(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:  # RFC 6749 §3.1: parameters must not be repeated
            params[name] = "\x00repeated"
        else:
            params[name] = value
    return params


@router.get("/oauth2/authorize", response_model=None)
async def authorize(request: Request) -> Response:
    params = _single(list(request.query_params.multi_items()))
    try:
        checked = _flow(request).check(params)
    except UntrustedRedirect:
        return _untrusted()
    except RedirectError as exc:
        return _refused(exc)
    return _page(login_page.render(checked))


@router.post("/oauth2/authorize", response_model=None)
async def sign_in(request: Request) -> Response:
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return _page(login_page.error_page("Send the sign-in form as a web form."), 400)
    try:
        form = _single(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        return _page(login_page.error_page("The form is not valid UTF-8."), 400)
    flow = _flow(request)
    try:
        checked = flow.check(form)
    except UntrustedRedirect:
        return _untrusted()
    except RedirectError as exc:
        return _refused(exc)
    username = form.get("username", "")[:320]
    try:
        code = await flow.sign_in(checked, username, form.get("password", ""))
    except RedirectError as exc:
        return _refused(exc)
    except OAuthError as exc:
        # Wrong password (401) or locked out (429): the page again, nothing redirected.
        locked = exc.retry_after is not None
        headers = {"Retry-After": str(exc.retry_after)} if locked else None
        page = login_page.render(checked, exc.description, username)
        return _page(page, 429 if locked else 401, headers)
    return _back(checked.redirect_uri, {"code": code, "state": checked.state})


@router.get("/oauth2/login.css")
async def login_css() -> Response:
    return Response(
        login_page.STYLE,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
