"""On the running platform, `kaya787 status` and the listings write none of the launcher's
files in var/ (tests/unit/test_launcher_readonly.py checks `make down` and a fresh checkout).

The processes themselves keep writing under var/ (logs, data, the name-resolution table,
NGINX's JWKS cache), so the snapshot is of what the launcher writes: dev secrets,
certificates, pid files, the profile marker and every config it renders.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.platform import ROOT, Platform
from tests.unit.test_launcher_readonly import Snapshot, snapshot

pytestmark = pytest.mark.integration

KAYA = str(ROOT / ".venv" / "bin" / "kaya787")
LAUNCHERS_OWN = (
    "secrets",
    "certs",
    "run/pids",
    "run/configs",
    "run/profile",
    "run/redis.conf",
    "run/gateway/nginx.conf",
    "run/prometheus/prometheus.yml",
    "run/kafka/server.properties",
)


def _launchers_files(var: Path) -> Snapshot:
    return {
        name: stats
        for name, stats in snapshot(var).items()
        if any(name == own or name.startswith(f"{own}/") for own in LAUNCHERS_OWN)
    }


def test_status_and_the_listings_leave_the_launchers_files_alone(platform: Platform) -> None:
    before = _launchers_files(platform.layout.var)
    assert "run/profile" in before
    assert any(name.startswith("run/pids/") for name in before)
    for argv in (
        ["status"],
        ["list", "-o", "json"],
        ["components"],
        ["configurations"],
        ["mtls", "expiry"],
        ["metadata", "identity"],
    ):
        done = subprocess.run(
            [KAYA, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (argv, done.stderr)
        assert _launchers_files(platform.layout.var) == before, f"kaya787 {argv[0]} wrote"
