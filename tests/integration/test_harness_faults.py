"""The harness can stop, kill and restart one app or sidecar; the platform recovers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.platform import Platform, eventually

pytestmark = pytest.mark.integration


def _invoke_ok(platform: Platform, target: str) -> bool:
    try:
        return platform.call(target, "GET", "/readyz", via="gateway").status_code == 200
    except httpx.HTTPError:
        return False


def test_readyz_reports_a_missing_sidecar_and_recovers(platform: Platform) -> None:
    platform.stack.stop_sidecar("transactions")
    try:
        with platform.app_direct("transactions") as app:
            response = app.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_ready"
    finally:
        platform.stack.start_sidecar("transactions")
    with platform.app_direct("transactions") as app:
        assert eventually(lambda: app.get("/readyz").status_code == 200, what="readyz")
    assert eventually(lambda: _invoke_ok(platform, "transactions"), what="invocation")


def test_killed_app_is_restarted_and_reachable_again(platform: Platform) -> None:
    before = platform.stack.table.get("app-accounts")
    assert before is not None
    platform.stack.restart_app("accounts", kill=True)
    after = platform.stack.table.get("app-accounts")
    assert after is not None
    assert after.pid != before.pid
    assert eventually(lambda: _invoke_ok(platform, "accounts"), what="accounts after restart")


def test_killed_sidecar_is_restarted_and_reachable_again(platform: Platform) -> None:
    platform.stack.restart_sidecar("accounts", kill=True)
    assert eventually(
        lambda: _invoke_ok(platform, "accounts"),
        timeout=30.0,
        what="accounts' sidecar after restart",
    )


def test_an_unreachable_app_is_the_edges_503_problem_never_dapr_s_500(
    platform: Platform,
) -> None:
    # With transactions' sidecar gone, the gateway's sidecar answers a 500 of its own (Dapr's
    # error body, naming app-ids); the client gets the edge's problem, and may retry.
    _, issued = platform.register_and_login()
    headers = {"authorization": f"Bearer {issued['access_token']}"}
    platform.stack.stop_sidecar("transactions", kill=True)
    try:
        response = platform.public("GET", "/api/v1/transactions", headers=headers)
    finally:
        platform.stack.start_sidecar("transactions")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json()["code"] == "unavailable"
    assert "ERR_" not in response.text
    # An app's own refusal still reaches the client untouched.
    assert eventually(lambda: _invoke_ok(platform, "transactions"), what="transactions back")
    missing = platform.public("GET", f"/api/v1/transfers/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "transaction_not_found"
