"""The files of a new app package and its first test, as `kaya787 new-service` writes them.

The package has the shape every app has (docs/adding-a-service.md): a composition root
(`main.py`) that builds adapters in the lifespan, framework-free use cases (`service.py`)
written against Protocols (`ports.py`), a pure `domain.py`, Dapr adapters and thin routes.
Its example use case keeps one text item per caller and id in the app's own state store,
behind a token-checked public route.
"""

from __future__ import annotations

from string import Template

PYPROJECT = """\
[project]
name = "kaya787-$name"
version = "0.1.0"
description = "KAYA787 $name service"
requires-python = ">=3.11,<3.12"
dependencies = ["kaya787-kit"]

[project.scripts]
kaya787-$name = "$package.__main__:main"

[tool.uv.sources]
kaya787-kit = { workspace = true }

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/$package"]
"""

INIT = '''\
"""KAYA787 $name service."""
'''

MAIN_MODULE = '''\
"""`python -m $package`: serve $name on loopback (APP_PORT), behind its sidecar."""

from kaya787_kit.service_app import serve

from $package.main import create_app
from $package.settings import ${Class}Settings


def main() -> None:
    settings = ${Class}Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
'''

SETTINGS = '''\
"""Settings of $name, from the environment the launcher (or `dapr run`) sets."""

from kaya787_kit.settings import ServiceSettings


class ${Class}Settings(ServiceSettings):
    app_id: str = "$name"
'''

DOMAIN = '''\
"""The rules of $name, with no I/O."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TEXT = 1000


@dataclass(frozen=True)
class Item:
    """One caller's item: only its owner reads or replaces it."""

    owner_id: str
    id: str
    text: str

    def public(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}
'''

PORTS = '''\
"""What the use cases of $name need from the outside world."""

from typing import Protocol

from kaya787_kit.concurrency import Versioned

from $package.domain import Item


class ItemStore(Protocol):
    async def get(self, owner_id: str, item_id: str) -> Versioned[Item] | None: ...

    async def put(self, item: Item, etag: str | None) -> None:
        """Insert (`etag` None) or replace at that version; EtagConflict on a lost race."""
        ...
'''

SERVICE = '''\
"""The use cases of $name: no FastAPI, httpx or Dapr here (a unit test checks)."""

from __future__ import annotations

from kaya787_kit.concurrency import retry_on_conflict
from kaya787_kit.errors import NotFound

from $package.domain import Item
from $package.ports import ItemStore


class ItemsService:
    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def put(self, owner_id: str, item_id: str, text: str) -> Item:
        item = Item(owner_id, item_id, text)

        async def attempt() -> Item:
            found = await self._store.get(owner_id, item_id)
            await self._store.put(item, None if found is None else found.etag)
            return item

        return await retry_on_conflict(attempt)

    async def get(self, owner_id: str, item_id: str) -> Item:
        found = await self._store.get(owner_id, item_id)
        if found is None:
            raise NotFound("item_not_found", "No such item.")
        return found.value
'''

ADAPTERS = '''\
"""Dapr implementation of the item store: the app's own state store (kaya787_kit.state)."""

from kaya787_kit.state import DaprStateStore, Versioned

from $package.domain import Item


class DaprItemStore:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    @staticmethod
    def _key(owner_id: str, item_id: str) -> str:
        return f"item:{owner_id}:{item_id}"

    async def get(self, owner_id: str, item_id: str) -> Versioned[Item] | None:
        found = await self._state.get(self._key(owner_id, item_id))
        if found is None:
            return None
        return Versioned(Item(owner_id, item_id, str(found.value["text"])), found.etag)

    async def put(self, item: Item, etag: str | None) -> None:
        await self._state.save(self._key(item.owner_id, item.id), {"text": item.text}, etag)
'''

API = '''\
"""HTTP routes of $name: translate requests to use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from kaya787_kit.auth import Principal, require_scopes
from kaya787_kit.problems import problem_responses
from pydantic import BaseModel, ConfigDict, Field

from $package.domain import MAX_TEXT
from $package.service import ItemsService

public = APIRouter(
    prefix="/api/v1/$name", tags=["$name"], responses=problem_responses(401, 403, 422, 503)
)
# Any valid access token; require_scopes("...") once identity issues a scope for $name.
Caller = Annotated[Principal, Depends(require_scopes())]
# Parsed before it reaches a state key: no `||`, `/` or `..` can name another key.
ItemId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$$")]


class ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)


class ItemOut(BaseModel):
    id: str
    text: str


def _service(request: Request) -> ItemsService:
    service: ItemsService = request.app.state.items
    return service


@public.put("/items/{item_id}")
async def put_item(item_id: ItemId, body: ItemBody, request: Request, caller: Caller) -> ItemOut:
    item = await _service(request).put(caller.subject, item_id, body.text)
    return ItemOut(**item.public())


@public.get("/items/{item_id}", responses=problem_responses(404))
async def get_item(item_id: ItemId, request: Request, caller: Caller) -> ItemOut:
    return ItemOut(**(await _service(request).get(caller.subject, item_id)).public())
'''

COMPOSITION_ROOT = '''\
"""Composition root of $name: the only place its parts are put together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.service_app import (
    create_service_app,
    peer_token_verifier,
    subscribe_to_revocations,
)
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore

from $package import api
from $package.adapters import DaprItemStore
from $package.service import ItemsService
from $package.settings import ${Class}Settings


def create_app(settings: ${Class}Settings | None = None) -> FastAPI:
    settings = settings or ${Class}Settings()

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        app.state.items = ItemsService(DaprItemStore(DaprStateStore(sidecar.http, STATESTORE)))
        # Tokens are verified with identity's JWKS; revoked ones are refused (events + reload).
        async with peer_token_verifier(app, settings, sidecar):
            yield

    subscriptions = Subscriptions(settings.app_id, PUBSUB)
    subscribe_to_revocations(subscriptions, lambda: app)
    app = create_service_app(
        settings,
        title="KAYA787 $name",
        routers=[api.public, subscriptions.router()],
        wiring=wiring,
    )
    return app
'''

FAKES = '''\
"""Fakes of $name's ports."""

from __future__ import annotations

$fake_imports


class FakeItemStore:
    """In memory, with the store's first-write rules: an insert of an existing key or a
    write at a stale version is an EtagConflict."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[Item, int]] = {}

    async def get(self, owner_id: str, item_id: str) -> Versioned[Item] | None:
        row = self.rows.get((owner_id, item_id))
        return None if row is None else Versioned(row[0], str(row[1]))

    async def put(self, item: Item, etag: str | None) -> None:
        key = (item.owner_id, item.id)
        row = self.rows.get(key)
        if (row is None) != (etag is None) or (row is not None and str(row[1]) != etag):
            raise EtagConflict(item.id)
        self.rows[key] = (item, 1 if row is None else row[1] + 1)
'''

UNIT_TEST = '''\
"""$name's use cases against a fake store: items are per caller, replaced in place."""

from __future__ import annotations

import pytest
$test_imports

from tests.fakes.$name import FakeItemStore


async def test_an_item_is_kept_and_replaced_for_its_owner() -> None:
    service = ItemsService(FakeItemStore())
    await service.put("ada", "first", "hello")
    replaced = await service.put("ada", "first", "hello again")
    assert (await service.get("ada", "first")) == replaced
    assert replaced.text == "hello again"


async def test_another_callers_item_is_not_found() -> None:
    service = ItemsService(FakeItemStore())
    await service.put("ada", "first", "hello")
    with pytest.raises(NotFound):
        await service.get("grace", "first")
'''

PACKAGE_FILES = {
    "__init__.py": INIT,
    "__main__.py": MAIN_MODULE,
    "settings.py": SETTINGS,
    "domain.py": DOMAIN,
    "ports.py": PORTS,
    "service.py": SERVICE,
    "adapters.py": ADAPTERS,
    "api.py": API,
    "main.py": COMPOSITION_ROOT,
}


def _sorted_imports(*lines: str) -> str:
    """Import lines in the order ruff's isort wants them (both packages are third-party
    to tests/, so the app's may sort before or after the kit's)."""
    return "\n".join(sorted(lines, key=lambda line: line.split()[1]))


def app_files(name: str) -> dict[str, str]:
    """Relative path -> text of every new file of app `name`, its fake and its test."""
    package = f"kaya787_{name}"
    values = {
        "name": name,
        "package": package,
        "Class": name.capitalize(),
        "fake_imports": _sorted_imports(
            "from kaya787_kit.concurrency import EtagConflict, Versioned",
            f"from {package}.domain import Item",
        ),
        "test_imports": _sorted_imports(
            "from kaya787_kit.errors import NotFound",
            f"from {package}.service import ItemsService",
        ),
    }
    files = {f"apps/{name}/pyproject.toml": PYPROJECT}
    files |= {f"apps/{name}/src/{package}/{f}": text for f, text in PACKAGE_FILES.items()}
    files[f"tests/fakes/{name}.py"] = FAKES
    files[f"tests/unit/test_{name}_service.py"] = UNIT_TEST
    return {path: Template(text).substitute(values) for path, text in files.items()}
