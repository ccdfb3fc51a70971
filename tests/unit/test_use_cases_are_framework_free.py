"""The use cases and the domain of every app load without FastAPI, httpx or the Dapr SDK.

Each module is imported in a fresh interpreter, so one module that drags a framework in
cannot hide behind another that was imported first.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.platform import ROOT

FORBIDDEN = ("fastapi", "starlette", "httpx", "dapr")
# The layers that hold the rules and use cases, and the ports they are written against;
# adapters, api and main are the edges that may use frameworks.
CORE = ("domain", "service", "ports", "code_flow", "code_ports", "rails", "oauth_errors")
KIT_CORE = (
    "errors",
    "concurrency",
    "cloudevents",
    "principal",
    "outbox_event",
    "ids",
    "money",
    "circuit_breaker",
)


def _core_modules() -> list[str]:
    modules = []
    for package in sorted((ROOT / "apps").glob("*/src/kaya787_*")):
        modules += [f"{package.name}.{m}" for m in CORE if (package / f"{m}.py").is_file()]
    return modules + [f"kaya787_kit.{m}" for m in KIT_CORE]


def _loaded_frameworks(module: str) -> list[str]:
    probe = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.split()


def test_every_app_has_its_use_cases_checked() -> None:
    modules = _core_modules()
    for app in ("accounts", "analytics", "identity", "ops", "partner", "transactions"):
        assert f"kaya787_{app}.service" in modules
        assert f"kaya787_{app}.domain" in modules


def test_no_use_case_or_domain_module_loads_a_web_or_dapr_framework() -> None:
    modules = _core_modules()
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = dict(zip(modules, pool.map(_loaded_frameworks, modules), strict=True))
    offenders = {module: found for module, found in loaded.items() if found}
    assert offenders == {}, f"these modules load frameworks: {offenders}"


@pytest.mark.parametrize("service", sorted((ROOT / "apps").glob("*/src/kaya787_*/service.py")))
def test_services_speak_no_http(service: Path) -> None:
    text = service.read_text()
    assert "Problem(" not in text
    assert "Retry-After" not in text
    assert re.findall(r"\b(?:4[0-2]\d|50[0-4])\b", text) == [], "an HTTP status in a use case"
