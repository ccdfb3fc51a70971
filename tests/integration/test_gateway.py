"""The edge (NGINX on 127.0.0.1:8080): each control shown to reject."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from tests.support import tokens as t
from tests.support.platform import Platform

pytestmark = pytest.mark.integration

PROTECTED = ["/api/v1/users/me", "/api/v1/analytics/overview", "/api/v1/accounts"]


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_routes_need_a_token(platform: Platform, path: str) -> None:
    response = platform.public("GET", path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_and_forged_tokens_stop_at_the_edge(platform: Platform) -> None:
    past = int(time.time()) - 3600
    for token in (
        t.es256(t.claims(iat=past, nbf=past, exp=past + 60), "any", t.new_key()),
        t.unsigned(t.claims(), "any"),
        "a.b.c",
    ):
        response = platform.public(
            "GET", "/api/v1/users/me", headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/v1.0/state/statestore/anything",
        "/v1.0/publish/pubsub/identity.user-registered.v1",
        "/v1.0/invoke/accounts/method/internal/postings",
        "/v1.0/invoke/partner/method/internal/payins",
        "/v1.0/invoke/identity/method/internal/revocations/x",
        "/v1.0/metadata",
        "/v1.0/secrets/secretstore/redis-password",
        "/v1.0/healthz",
        "/internal/admin/signing-keys/rotate",
        "/openapi.json",
        "/nope",
        "/api/v1/auth/..%2f..%2fv1.0/metadata",
        "/api/v1/auth/%2e%2e/%2e%2e/v1.0/metadata",
        "/api/v1/accounts/../../v1.0/metadata",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_everything_outside_the_route_table_is_404(
    platform: Platform, path: str, method: str
) -> None:
    response = platform.public(method, path, headers={"authorization": "Bearer x"})
    assert response.status_code == 404, response.text
    assert "dapr" not in response.text.lower()


def test_oversized_body_is_413(platform: Platform) -> None:
    body = json.dumps({"email": "x@example.com", "password": "p" * (2 * 1024 * 1024)})
    response = platform.public(
        "POST", "/api/v1/auth/register", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_burst_over_the_limit_is_429_with_retry_after(platform: Platform) -> None:
    # Unauthenticated hits on a protected route are the cheapest to send and still count:
    # the limit applies before the token check. Pipelined on one connection, so that the
    # burst arrives within milliseconds however busy the machine (and this client) is.
    count = 600
    request = b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", 8080)
    writer.write(request * (count - 1) + last)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=60)
    writer.close()
    # Each answer: a status line and headers, then a body the next status line follows.
    heads = re.findall(rb"HTTP/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n", answer, re.S)
    statuses = [int(status) for status, _ in heads]
    assert len(statuses) == count
    limited = [h.decode("latin-1").lower() for status, h in heads if status == b"429"]
    assert limited, f"no 429 in {count} requests"
    assert statuses.count(401) >= 100  # the burst allowance was served (and refused a token)
    assert "retry-after: 1" in limited[0]
    assert "content-type: application/problem+json" in limited[0]
    assert b'"code":"rate_limited"' in answer
    await asyncio.sleep(3)  # let the bucket refill for the tests after this one
    assert platform.public("GET", "/.well-known/jwks.json").status_code == 200


def test_cors_allows_only_listed_origins(platform: Platform) -> None:
    allowed = "http://localhost:3000"
    ok = platform.public("GET", "/.well-known/jwks.json", headers={"origin": allowed})
    assert ok.headers["access-control-allow-origin"] == allowed
    evil = platform.public(
        "GET", "/.well-known/jwks.json", headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in evil.headers
    preflight = platform.public(
        "OPTIONS",
        "/api/v1/users/me",
        headers={"origin": allowed, "access-control-request-method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == allowed
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    evil_preflight = platform.public(
        "OPTIONS",
        "/api/v1/users/me",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in evil_preflight.headers


def test_security_headers_and_request_ids(platform: Platform) -> None:
    response = platform.public(
        "GET", "/.well-known/openid-configuration", headers={"x-request-id": "test-req-0123456789"}
    )
    assert response.status_code == 200
    headers = response.headers
    assert headers["x-request-id"] == "test-req-0123456789"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "server" not in headers or "nginx/" not in headers["server"]
    generated = platform.public(
        "GET", "/.well-known/openid-configuration", headers={"x-request-id": "bad id with spaces"}
    )
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32


def test_access_log_is_json_with_the_request_id(platform: Platform) -> None:
    marker = f"log-check-{time.time_ns()}"
    platform.public("GET", "/.well-known/jwks.json", headers={"x-request-id": marker})
    # NGINX writes the access-log line after the response has gone out, so the client can
    # read the response before the line exists: wait for it, briefly.
    deadline = time.monotonic() + 5.0
    mine: list[dict[str, object]] = []
    while not mine and time.monotonic() < deadline:
        lines = (platform.layout.logs / "gateway-access.log").read_text().splitlines()
        mine = [e for e in map(json.loads, lines[-200:]) if e["request_id"] == marker]
        if not mine:
            time.sleep(0.05)
    assert mine, f"no access-log line with request_id {marker} within 5 s"
    assert mine[0]["status"] == 200
    assert mine[0]["uri"] == "/.well-known/jwks.json"


def test_a_client_cannot_smuggle_its_own_dapr_token(platform: Platform) -> None:
    # The edge overwrites it with its own; the request still works and the client's
    # value never reaches the sidecar as a credential.
    response = platform.public(
        "GET", "/.well-known/jwks.json", headers={"dapr-api-token": "attacker-token"}
    )
    assert response.status_code == 200


def test_full_flow_through_the_gateway(platform: Platform) -> None:
    email, issued = platform.register_and_login()
    headers = {"authorization": f"Bearer {issued['access_token']}"}
    me = platform.public("GET", "/api/v1/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == email
    # Platform-wide figures are a service's (or staff's) to read, not a customer's.
    refused = platform.public("GET", "/api/v1/analytics/overview", headers=headers)
    assert refused.status_code == 403
    overview = platform.public("GET", "/api/v1/analytics/overview", headers=platform.analyst())
    assert overview.status_code == 200
    assert "users_registered" in overview.json()
