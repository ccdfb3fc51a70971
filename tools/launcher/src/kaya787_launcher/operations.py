"""Operator actions on a running platform, done the way an operator would: with a service
client's credentials, through the gateway's sidecar (admin routes are never public)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kaya787_launcher.devsecrets import CLIENTS_FILE
from kaya787_launcher.gateway import GATEWAY_APP_ID, GATEWAY_PORT
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK

OPS_CLIENT = "kaya787-ops"


def rotate_signing_key(stack: Stack) -> dict[str, Any]:
    try:
        secret = json.loads((stack.layout.secrets / CLIENTS_FILE).read_text())[OPS_CLIENT]
    except (OSError, KeyError, ValueError) as exc:
        raise LauncherError(
            f"no {OPS_CLIENT} client secret in var/secrets; run `make bootstrap`"
        ) from exc
    sidecar = stack.run_file.app(GATEWAY_APP_ID)
    try:
        issued = httpx.post(
            f"http://{LOOPBACK}:{GATEWAY_PORT}/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "identity:admin"},
            auth=(OPS_CLIENT, secret),
            timeout=10.0,
        )
        issued.raise_for_status()
        rotated = httpx.post(
            f"http://{LOOPBACK}:{sidecar.http_port}/v1.0/invoke/identity/method"
            "/internal/admin/signing-keys/rotate",
            headers={
                "dapr-api-token": stack.tokens_for(GATEWAY_APP_ID)["dapr_api_token"],
                "authorization": f"Bearer {issued.json()['access_token']}",
            },
            timeout=10.0,
        )
        rotated.raise_for_status()
    except httpx.HTTPError as exc:
        raise LauncherError(f"rotation failed: {exc}") from exc
    body: dict[str, Any] = rotated.json()
    return body
