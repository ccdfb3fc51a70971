"""Behind the edge: Dapr access control, topic scopes and component scopes reject."""

from __future__ import annotations

import pytest
from kaya787_kit.components import PUBSUB, SECRETSTORE, STATESTORE

from tests.support.platform import Platform

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("caller", "target", "method", "path"),
    [
        ("analytics", "accounts", "POST", "/internal/postings"),
        ("gateway", "accounts", "POST", "/internal/postings"),
        ("identity", "accounts", "POST", "/internal/postings"),
        ("gateway", "accounts", "GET", "/internal/accounts/partner-usd"),
        # Only transactions reaches the payment partner: nobody else can confirm a pay-in.
        ("gateway", "partner", "POST", "/internal/payins"),
        ("accounts", "partner", "POST", "/internal/payins"),
        ("analytics", "partner", "POST", "/internal/payouts"),
        ("partner", "accounts", "POST", "/internal/postings"),
        ("analytics", "identity", "POST", "/api/v1/auth/register"),
        ("accounts", "identity", "POST", "/oauth2/token"),
        ("gateway", "identity", "GET", "/internal/revocations/some-id"),
        ("accounts", "transactions", "POST", "/api/v1/transfers"),
        ("transactions", "analytics", "GET", "/api/v1/analytics/overview"),
        ("gateway", "accounts", "DELETE", "/api/v1/accounts"),
    ],
)
def test_calls_outside_the_acl_are_403(
    platform: Platform, caller: str, target: str, method: str, path: str
) -> None:
    response = platform.call(target, method, path, via=caller)
    assert response.status_code == 403, response.text
    assert "ERR_DIRECT_INVOKE" in response.text or "access control" in response.text.lower()


@pytest.mark.parametrize(
    ("caller", "target", "path"),
    [
        ("accounts", "identity", "/.well-known/jwks.json"),
        ("transactions", "identity", "/.well-known/jwks.json"),
        ("analytics", "identity", "/internal/revocations/some-id"),
    ],
)
def test_calls_the_acl_allows_go_through(
    platform: Platform, caller: str, target: str, path: str
) -> None:
    assert platform.call(target, "GET", path, via=caller).status_code == 200


@pytest.mark.parametrize(
    ("target", "path"),
    [("accounts", "/internal/postings"), ("partner", "/internal/payins")],
)
def test_only_transactions_passes_the_acl_to_internal_routes(
    platform: Platform, target: str, path: str
) -> None:
    # An empty body: the app's own 422 (not Dapr's 403) shows the ACL let transactions in.
    response = platform.call(target, "POST", path, via="transactions", json={})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("publisher", "topic"),
    [
        ("accounts", "identity.user-registered.v1"),
        ("analytics", "identity.user-registered.v1"),
        ("transactions", "identity.user-registered.v1"),
        ("identity", "accounts.account-opened.v1"),
    ],
)
def test_publishing_outside_the_topic_scopes_is_refused(
    platform: Platform, publisher: str, topic: str
) -> None:
    with platform.sidecar(publisher) as sidecar:
        response = sidecar.post(f"/v1.0/publish/{PUBSUB}/{topic}", json={"user_id": "x"})
    assert response.status_code == 403, response.text


def test_the_gateway_sidecar_sees_no_store_broker_or_secrets(platform: Platform) -> None:
    with platform.sidecar("gateway") as sidecar:
        state = sidecar.get(f"/v1.0/state/{STATESTORE}/anything")
        publish = sidecar.post(f"/v1.0/publish/{PUBSUB}/identity.user-registered.v1", json={})
        secret = sidecar.get(f"/v1.0/secrets/{SECRETSTORE}/redis-password")
        meta = sidecar.get("/v1.0/metadata").json()
    components = {c["name"] for c in meta.get("components", [])}
    assert components == set()
    for response, code in (
        (state, "ERR_STATE_STORE_NOT_CONFIGURED"),
        (publish, "ERR_PUBSUB_NOT_FOUND"),
        (secret, "ERR_SECRET_STORES_NOT_CONFIGURED"),
    ):
        assert response.status_code >= 400
        assert response.json()["errorCode"] == code, response.text
    assert platform.secret("redis-password") not in secret.text


def test_each_app_sees_only_its_own_state_store(platform: Platform) -> None:
    for app_id in platform.app_ids():
        with platform.sidecar(app_id) as sidecar:
            meta = sidecar.get("/v1.0/metadata").json()
        stores = [c for c in meta["components"] if c["name"] == STATESTORE]
        assert len(stores) == 1
    # identity's store carries the outbox; the others do not publish through one.
    with platform.sidecar("accounts") as sidecar:
        key = "acl-probe"
        saved = sidecar.post(f"/v1.0/state/{STATESTORE}", json=[{"key": key, "value": 1}])
        assert saved.status_code == 204
    with platform.sidecar("analytics") as sidecar:
        # Same key name, another app: keys are prefixed by app-id, so nothing is shared.
        assert sidecar.get(f"/v1.0/state/{STATESTORE}/{key}").status_code == 204
