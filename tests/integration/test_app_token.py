"""Apps refuse calls that do not come from their own sidecar."""

from __future__ import annotations

import pytest

from tests.support.listeners import tcp_listeners
from tests.support.platform import Platform

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("app_id", ["identity", "accounts", "transactions", "analytics"])
def test_direct_call_without_app_token_is_rejected(platform: Platform, app_id: str) -> None:
    with platform.app_direct(app_id) as app:
        missing = app.get("/openapi.json")
        wrong = app.get("/openapi.json", headers={"dapr-api-token": "y" * 43})
        other_apps = app.get(
            "/openapi.json",
            headers={
                "dapr-api-token": platform.app_token(
                    "identity" if app_id != "identity" else "accounts"
                )
            },
        )
        right = app.get("/openapi.json", headers={"dapr-api-token": platform.app_token(app_id)})
    for response in (missing, wrong, other_apps):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "app_token_invalid"
    assert right.status_code == 200


def test_everything_listens_on_loopback_only(platform: Platform) -> None:
    cp = platform.stack.ports
    ours = {p for a in platform.stack.run_file.apps for p in a.ports().values()}
    ours |= set(vars(cp).values())
    exposed = {(port) for host, port in tcp_listeners() if port in ours and host != "127.0.0.1"}
    # Dapr 1.18.2's control plane parses --healthz-listen-address (and sentry its
    # --metrics-listen-address) but never hands it to the server, so those plain-HTTP
    # health/metrics ports bind every interface. They carry no data or credentials; every
    # API, gRPC, app and store port must be loopback-only.
    upstream_exceptions = {
        cp.sentry_healthz,
        cp.placement_healthz,
        cp.scheduler_healthz,
        cp.sentry_metrics,
    }
    assert exposed <= upstream_exceptions, sorted(exposed - upstream_exceptions)
