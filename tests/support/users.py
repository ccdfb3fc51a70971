"""A fresh user, registered and logged in through the public API (any gateway: the local
one or a cluster's), the one way every test and benchmark gets one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


def register_and_login(
    gateway: httpx.Client,
    password: str = PASSWORD,
    scope: str | None = None,
    prefix: str = "user",
) -> tuple[str, dict[str, Any]]:
    """A new user (random email) and its token response (access_token, refresh_token, ...)."""
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    created = gateway.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    form = {"grant_type": "password", "username": email, "password": password}
    if scope:
        form["scope"] = scope
    issued = gateway.post("/oauth2/token", data=form)
    assert issued.status_code == 200, issued.text
    body: dict[str, Any] = issued.json()
    return email, body


def bearer(issued: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a token response."""
    return {"authorization": f"Bearer {issued['access_token']}"}
