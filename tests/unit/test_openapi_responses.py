"""Every JSON route documents what it answers: a schema for its success and problem+json
(or RFC 6749 errors, on the OAuth endpoints) for its refusals."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import kaya787_accounts.api
import kaya787_analytics.api
import kaya787_identity.api
import kaya787_partner.api
import kaya787_transactions.api
import pytest
from fastapi import APIRouter, FastAPI

ROUTERS: list[tuple[ModuleType, str]] = [
    (kaya787_identity.api, "public"),
    (kaya787_identity.api, "internal"),
    (kaya787_accounts.api, "public"),
    (kaya787_accounts.api, "internal"),
    (kaya787_transactions.api, "router"),
    (kaya787_analytics.api, "router"),
    (kaya787_partner.api, "internal"),
]
# Server-sent events, not JSON.
NOT_JSON = {("/api/v1/analytics/stream", "get")}


def _openapi(module: ModuleType, name: str) -> dict[str, Any]:
    app = FastAPI()
    router: APIRouter = getattr(module, name)
    app.include_router(router)
    return app.openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if (path, method) not in NOT_JSON
    ]


@pytest.mark.parametrize(("module", "name"), ROUTERS, ids=[f"{m.__name__}.{n}" for m, n in ROUTERS])
def test_every_route_documents_its_success_schema(module: ModuleType, name: str) -> None:
    doc = _openapi(module, name)
    operations = _operations(doc)
    assert operations, "the router publishes no route in its OpenAPI"
    for path, method, op in operations:
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, f"{method.upper()} {path}: no success response"
        for status, response in successes.items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            assert schema not in ({}, {"type": "object"}), (
                f"{method.upper()} {path} {status}: no response model"
            )


@pytest.mark.parametrize(("module", "name"), ROUTERS, ids=[f"{m.__name__}.{n}" for m, n in ROUTERS])
def test_refusals_are_documented_as_problems(module: ModuleType, name: str) -> None:
    doc = _openapi(module, name)
    for path, method, op in _operations(doc):
        if "parameters" not in op and "requestBody" not in op:
            continue  # takes no input: nothing to refuse
        refusals = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        assert refusals, f"{method.upper()} {path}: no documented refusal"
        for status, response in refusals.items():
            content = response.get("content", {})
            if path.startswith("/oauth2/"):
                assert "application/json" in content, (path, status)
            elif status != "422" or "application/problem+json" in content:
                assert "application/problem+json" in content, (method, path, status)
