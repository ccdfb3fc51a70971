"""A fresh user, registered and logged in through the public API (any gateway: the local
one or a cluster's), the one way every test and benchmark gets one."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
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


REPORTING_CLIENT = "kaya787-reporting"
# Where bootstrap writes the dev service clients' plain secrets (git-ignored).
CLIENTS_FILE = Path(__file__).resolve().parents[2] / "var" / "secrets" / "clients.json"


def reporting_secret() -> str:
    """The reporting client's secret: KAYA787_REPORTING_SECRET (a cluster), else the dev one."""
    secret = os.environ.get("KAYA787_REPORTING_SECRET")
    if secret:
        return secret
    clients: dict[str, str] = json.loads(CLIENTS_FILE.read_text())
    return clients[REPORTING_CLIENT]


def analyst(gateway: httpx.Client) -> dict[str, str]:
    """A service token with analytics:read (client_credentials): platform-wide figures are
    not a customer's to see."""
    issued = gateway.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "analytics:read"},
        auth=(REPORTING_CLIENT, reporting_secret()),
    )
    assert issued.status_code == 200, issued.text
    return bearer(issued.json())
