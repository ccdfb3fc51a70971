"""The README's platform command end to end: up, status, foreground, down from elsewhere.

This module runs last (tests/e2e after tests/integration) because it stops and restarts
the shared platform; it leaves the platform up again for the session fixture to tear down.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.listeners import tcp_listeners
from tests.support.platform import ROOT, Platform, eventually

pytestmark = pytest.mark.e2e

KAYA = str(ROOT / ".venv" / "bin" / "kaya787")


def _cli(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    # No terminal and no stdin, like CI and `make down` from a script.
    return subprocess.run(
        [KAYA, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _our_ports(platform: Platform) -> set[int]:
    ports = {p for a in platform.stack.run_file.apps for p in a.ports().values()}
    return ports | set(vars(platform.stack.ports).values())


def test_status_reports_every_process_ready(platform: Platform) -> None:
    result = _cli("status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    names = {row["name"] for row in rows}
    assert {"sentry", "placement", "scheduler", "daprd-gateway", "nginx"} <= names
    assert {"jaeger", "prometheus"} <= names
    brokers = {"local": {"redis"}, "kafka": {"kafka", "postgres"}}[platform.stack.profile]
    assert brokers <= names
    for app_id in platform.app_ids():
        assert {f"daprd-{app_id}", f"app-{app_id}"} <= names
    assert all(row["state"] == "ready" for row in rows)


def test_metadata_shows_components_mtls_peers_and_control_plane(platform: Platform) -> None:
    result = _cli("metadata", "transactions")
    assert result.returncode == 0, result.stderr
    meta = json.loads(result.stdout)
    assert meta["id"] == "transactions"
    assert {c["name"] for c in meta["components"]} == {"statestore", "pubsub", "secretstore"}
    assert meta["actorRuntime"]["placement"] == "placement: connected"
    assert meta["scheduler"]["connected_addresses"] == ["127.0.0.1:50006"]
    versions = (ROOT / "tools" / "versions.env").read_text()
    assert f"DAPR_RUNTIME_VERSION={meta['runtimeVersion']}\n" in versions


def test_up_is_idempotent_while_running(platform: Platform) -> None:
    before = {t.name: t.pid for t in platform.stack.table.running()}
    result = _cli("up", "--profile", platform.stack.profile)
    assert result.returncode == 0, result.stderr
    assert "platform up" in result.stdout
    assert {t.name: t.pid for t in platform.stack.table.running()} == before


def test_down_from_another_shell_stops_a_foreground_up_and_leaves_nothing(
    platform: Platform,
) -> None:
    assert _cli("down").returncode == 0
    assert platform.stack.table.running() == []
    assert not (_our_ports(platform) & {port for _, port in tcp_listeners()})

    foreground = subprocess.Popen(
        [KAYA, "up", "--foreground", "--profile", platform.stack.profile],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        eventually(
            lambda: _cli("status").returncode == 0,
            timeout=120.0,
            every=1.0,
            what="the foreground platform to be ready",
        )
        pids = [t.pid for t in platform.stack.table.running()]
        assert len(pids) == sum(len(tier) for tier in platform.stack.tiers())
        down = _cli("down")
        assert down.returncode == 0, down.stderr
        assert foreground.wait(timeout=30) == 0
    finally:
        if foreground.poll() is None:
            foreground.kill()
    for pid in pids:
        assert not _alive(pid), f"pid {pid} survived make down"
    assert not (_our_ports(platform) & {port for _, port in tcp_listeners()})

    # Leave the platform as the session found it.
    started = time.monotonic()
    assert _cli("up", "--profile", platform.stack.profile).returncode == 0
    assert platform.stack.is_up(), f"not up again after {time.monotonic() - started:.0f}s"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"
