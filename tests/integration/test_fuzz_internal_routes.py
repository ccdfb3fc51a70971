"""Property-based fuzzing of the internal routes, each through the sidecar of the app the
access policies let call it (with that app's Dapr API token), as a peer would.

Same expectations as the public fuzzing (test_fuzz_public_api.py): never a 5xx (but the
caller sidecar's own refusals of two kinds of method name, see DAPRS_OWN_REFUSALS), every
refusal problem+json with a `code`, every documented answer matching its schema. Only the
operations the caller is allowed are generated (the others are Dapr's own 403, tested in
test_access_control.py). Fixed seed, KAYA787_FUZZ_EXAMPLES examples per operation and mode.
"""

from __future__ import annotations

from typing import Any

import kaya787_accounts.api
import kaya787_identity.api
import kaya787_partner.api
import pytest
import schemathesis
from fastapi import APIRouter, FastAPI
from hypothesis import HealthCheck, settings
from kaya787_launcher.topology import LOOPBACK
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance

from tests.integration.test_fuzz_public_api import EXAMPLES, refusals_are_problems
from tests.support.platform import Platform

# (app, its internal router, the peer allowed to call it, the operations that peer may call)
PEERS: list[tuple[str, APIRouter, str, set[tuple[str, str]]]] = [
    (
        "accounts",
        kaya787_accounts.api.internal,
        "transactions",
        {
            ("POST", "/internal/postings"),
            ("GET", "/internal/postings/{posting_id}"),
            ("GET", "/internal/accounts/{account_id}"),
        },
    ),
    ("identity", kaya787_identity.api.internal, "accounts", {("GET", "/internal/revocations")}),
    (
        "partner",
        kaya787_partner.api.internal,
        "transactions",
        {("POST", "/internal/payins"), ("POST", "/internal/payouts")},
    ),
]


def internal_openapi(router: APIRouter, allowed: set[tuple[str, str]]) -> dict[str, Any]:
    app = FastAPI(title="internal", version="1")
    app.include_router(router)
    document = app.openapi()
    for path, operations in list(document["paths"].items()):
        for method in list(operations):
            if (method.upper(), path) not in allowed:
                del operations[method]
        if not operations:
            del document["paths"][path]
    found = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert found == allowed, f"the allowed operations changed: {found ^ allowed}"
    return document


def _schema(app_id: str) -> schemathesis.schemas.BaseSchema:
    _, router, _, allowed = next(p for p in PEERS if p[0] == app_id)
    schema = schemathesis.openapi.from_dict(internal_openapi(router, allowed))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    return schema


@pytest.fixture(scope="module")
def peer_urls(platform: Platform) -> dict[str, tuple[str, dict[str, str]]]:
    """Per app: the base URL of its method space through its caller's sidecar, and headers."""
    urls = {}
    for app_id, _, caller, _ in PEERS:
        port = platform.stack.run_file.app(caller).http_port
        token = platform.stack.tokens_for(caller)["dapr_api_token"]
        urls[app_id] = (
            f"http://{LOOPBACK}:{port}/v1.0/invoke/{app_id}/method",
            {"dapr-api-token": token},
        )
    return urls


_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schemathesis.check
def undocumented_methods_meet_the_access_policy(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A method the route does not have (schemathesis tries TRACE and the like) is refused
    by the callee's access policy (Dapr's 403). Any other refusal is the app's own, and must
    be a problem."""
    documented = case.operation.schema.raw_schema["paths"][case.operation.path]
    if case.method.lower() not in documented and response.status_code == 403:
        assert b"access control policy has denied" in response.content
        return True
    # (A verb Dapr does not know, such as QUERY, passes the access policy and reaches the
    # app, which refuses it: as a problem, like any refusal of its own.)
    return refusals_are_problems(ctx, response, case)


# What the caller's sidecar itself answers with a 500 before any app sees the request: a
# method name with a control character, and one with an encoded percent sign (daprd decodes
# it once, then cannot parse its own URL to the app). No peer of ours sends either (every
# id is parsed before it reaches a sidecar URL); the public edge refuses both with a 404
# (test_hostile_ids.py).
DAPRS_OWN_REFUSALS = (b"method contains control character", b"invalid URL escape")


@schemathesis.check
def no_server_error_but_daprs_own_refusals(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Never a 5xx from an app."""
    if response.status_code < 500:
        return None
    assert any(refusal in response.content for refusal in DAPRS_OWN_REFUSALS), (
        f"{case.method} {case.formatted_path} -> {response.status_code} {response.content[:300]!r}"
    )
    return True


_CHECKS = [
    no_server_error_but_daprs_own_refusals,
    response_schema_conformance,
    undocumented_methods_meet_the_access_policy,
]


def _call(case: schemathesis.Case[Any], app_id: str, urls: dict[str, Any]) -> None:
    base_url, headers = urls[app_id]
    case.call_and_validate(base_url=base_url, headers=headers, checks=_CHECKS, timeout=15)


@_schema("accounts").parametrize()
@_SETTINGS
def test_accounts_internal_routes_hold_against_any_input_from_transactions(
    case: schemathesis.Case[Any], peer_urls: dict[str, Any]
) -> None:
    _call(case, "accounts", peer_urls)


@_schema("identity").parametrize()
@_SETTINGS
def test_identity_internal_routes_hold_against_any_input_from_a_peer(
    case: schemathesis.Case[Any], peer_urls: dict[str, Any]
) -> None:
    _call(case, "identity", peer_urls)


@_schema("partner").parametrize()
@_SETTINGS
def test_partner_internal_routes_hold_against_any_input_from_transactions(
    case: schemathesis.Case[Any], peer_urls: dict[str, Any]
) -> None:
    _call(case, "partner", peer_urls)
