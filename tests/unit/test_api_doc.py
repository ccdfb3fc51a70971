"""docs/api.md, the public contract, documents every public route the apps serve."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import kaya787_accounts.api
import kaya787_analytics.api
import kaya787_identity.api
import kaya787_identity.authorize_api
import kaya787_transactions.api
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PUBLIC_ROUTERS: list[tuple[ModuleType, str]] = [
    (kaya787_identity.api, "public"),
    (kaya787_identity.authorize_api, "router"),
    (kaya787_accounts.api, "public"),
    (kaya787_transactions.api, "router"),
    (kaya787_analytics.api, "router"),
]


def _shape(path: str) -> str:
    """`/api/v1/accounts/{account_id}` and `/api/v1/accounts/{id}` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented() -> set[str]:
    return {_shape(p) for p in re.findall(r"`(?:GET|POST) (/[^ `?]*)", DOC.read_text())}


@pytest.mark.parametrize(
    ("module", "name"), PUBLIC_ROUTERS, ids=[m.__name__ for m, _ in PUBLIC_ROUTERS]
)
def test_every_public_route_is_in_the_contract(module: ModuleType, name: str) -> None:
    router: APIRouter = getattr(module, name)
    served = {_shape(r.path) for r in router.routes if isinstance(r, APIRoute)}
    assert served, f"{module.__name__}.{name} serves nothing"
    assert served - _documented() == set(), f"undocumented in {DOC.name}"
