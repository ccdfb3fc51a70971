"""The sign-in page of the authorization-code flow: plain HTML, no script, every value
escaped; the request's parameters ride along in hidden fields."""

from __future__ import annotations

from html import escape

from kaya787_identity.pkce import AuthorizationRequest

STYLE_PATH = "/oauth2/login.css"
STYLE = """body{font:15px/1.4 "DejaVu Sans",sans-serif;background:#f4f6f8;color:#1d2733}
main{max-width:24em;margin:4em auto;background:#fff;padding:1.5em 2em;border-radius:8px;
box-shadow:0 1px 3px #0003}h1{font-size:1.3em}label{display:block;margin:.8em 0 .2em}
input[type=email],input[type=password]{width:100%;padding:.4em;box-sizing:border-box}
button{margin-top:1.2em;padding:.5em 1.4em}.error{color:#b3261e;background:#fde7e7;
padding:.5em;border-radius:4px}.muted{color:#667;font-size:.9em}
"""


def render(request: AuthorizationRequest, error: str = "", email: str = "") -> str:
    hidden = {
        "response_type": "code",
        "client_id": request.client_id,
        "redirect_uri": request.redirect_uri,
        "scope": " ".join(sorted(request.scope)),
        "state": request.state,
        "code_challenge": request.code_challenge,
        "code_challenge_method": "S256",
    }
    fields = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    banner = f'<p class="error" data-testid="login-error">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - KAYA787</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{STYLE_PATH}"></head>
<body><main>
<h1>Sign in to KAYA787</h1>
<p class="muted">{escape(request.client_id)} asks for: {escape(hidden["scope"])}</p>
{banner}
<form method="post" action="/oauth2/authorize" data-testid="login-form">
{fields}
<label for="email">Email</label>
<input id="email" name="username" type="email" required autocomplete="username"
 value="{escape(email)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" required
 autocomplete="current-password">
<button type="submit">Sign in</button>
</form></main></body></html>
"""


def error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in error - KAYA787</title>
<link rel="stylesheet" href="{STYLE_PATH}"></head>
<body><main><h1>Sign-in refused</h1>
<p class="error" data-testid="authorize-error">{escape(message)}</p></main></body></html>
"""
