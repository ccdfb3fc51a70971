"""The service docs/adding-a-service.md adds, run for real: its app and real sidecar, with
identity and the gateway (NGINX + its sidecar), Redis and the control plane, and the
page's "Run it" commands answered through the edge.

It runs beside the session's platform without touching it: the scaffold is made in a copy
of the repository (tests/unit/test_adding_a_service.py follows the page's other steps),
whose every port is moved out of the platform's range and whose var/ is its own.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kaya787_launcher import gateway
from kaya787_launcher.paths import Layout, dapr_bin_dir
from kaya787_launcher.stack import Stack

from tests.unit.test_adding_a_service import (
    NAME,
    RUN_IT,
    _shell,
    commands,
    copy_of_the_repository,
)

pytestmark = pytest.mark.integration

STARTED = (
    ("redis", "sentry"),
    ("placement", "scheduler"),
    ("daprd-identity", "app-identity", f"daprd-{NAME}", f"app-{NAME}"),
    ("daprd-gateway", "nginx"),
)


def moved(port: int) -> int:
    """A port of the platform's plan, moved out of its range (and below 65536)."""
    return port + 20000 if port < 45000 else port - 20000


def _move_ports(copy: Path) -> None:
    run_file = copy / "dapr" / "dapr.yaml"
    keys = "appPort|daprHTTPPort|daprGRPCPort|daprInternalGRPCPort|metricsPort"
    run_file.write_text(
        re.sub(
            rf"^(\s+(?:{keys}): )(\d+)$",
            lambda m: f"{m.group(1)}{moved(int(m.group(2)))}",
            run_file.read_text(),
            flags=re.M,
        )
    )
    for component in (copy / "components" / "local").rglob("*.yaml"):
        component.write_text(component.read_text().replace("127.0.0.1:6380", "127.0.0.1:26380"))


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Path, Stack]]:
    if not (dapr_bin_dir() / "daprd").is_file() or shutil.which("redis-server") is None:
        pytest.skip("needs `make bootstrap` (daprd, redis-server)")
    # Not under pytest's temporary folder (0700): NGINX's workers, which drop root, write
    # their JWKS cache under the copy's var/.
    copy = Path(tempfile.mkdtemp(prefix="kaya787-new-service-"))
    copy.chmod(0o755)
    try:
        yield from _scaffolded_and_started(copy)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _scaffolded_and_started(copy: Path) -> Iterator[tuple[Path, Stack]]:
    copy_of_the_repository(copy)
    scaffolded = _shell(copy, f".venv/bin/kaya787 new-service {NAME}")
    assert scaffolded.returncode == 0, scaffolded.stderr
    _move_ports(copy)
    with pytest.MonkeyPatch.context() as patch:
        # What the launcher gives every process: the new package where `make bootstrap`
        # would have installed it, no spans for the platform's Jaeger, and the edge's ports
        # moved like the rest.
        patch.setenv("PYTHONPATH", str(copy / "apps" / NAME / "src"))
        patch.setenv("KAYA787_TRACE_SAMPLING", "0")
        patch.setattr(gateway, "GATEWAY_PORT", moved(gateway.GATEWAY_PORT))
        patch.setattr(gateway, "JWKS_CACHE_PORT", moved(gateway.JWKS_CACHE_PORT))
        stack = Stack(Layout(copy), profile="local", say=lambda _: None)
        fields = dataclasses.asdict(stack.ports)
        stack.ports = type(stack.ports)(**{k: moved(v) for k, v in fields.items()})
        stack.prepare()
        plan = stack.plan()
        try:
            for names in STARTED:
                stack.run([plan.managed(name) for name in names], timeout=120.0)
            yield copy, stack
        finally:
            stack.down(quiet=True)


def test_the_run_it_commands_answer_through_the_edge(running: tuple[Path, Stack]) -> None:
    copy, _ = running
    lines = commands(RUN_IT)
    assert lines[0] == "make up"  # done above, on moved ports
    edge = f"127.0.0.1:{moved(8080)}"
    script = "set -e\n" + "\n".join(line.replace("127.0.0.1:8080", edge) for line in lines[1:])
    done = _shell(copy, script, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = _documents(done.stdout)  # curl prints no newline after a body
    assert printed[-2:] == [{"id": "first", "text": "hello"}] * 2, done.stdout


def _documents(text: str) -> list[object]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_without_a_token_the_edge_refuses(running: tuple[Path, Stack]) -> None:
    copy, _ = running
    url = f"http://127.0.0.1:{moved(8080)}/api/v1/{NAME}/items/first"
    done = _shell(copy, f"curl -s -o /dev/null -w '%{{http_code}}' {url}")
    assert done.stdout == "401"


def test_its_acl_lets_the_gateway_reach_only_the_public_route(
    running: tuple[Path, Stack],
) -> None:
    _, stack = running
    import httpx

    sidecar = stack.run_file.app("gateway")
    token = stack.tokens_for("gateway")["dapr_api_token"]
    base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/invoke/{NAME}/method"
    with httpx.Client(headers={"dapr-api-token": token}, timeout=10.0) as client:
        assert client.get(f"{base}/healthz").status_code == 200
        # Not on the ACL: the callee's sidecar refuses before the app sees it.
        assert client.get(f"{base}/metrics").status_code == 403
