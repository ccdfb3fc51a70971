"""The ops console (apps/ops) as a process of the platform: the Dapr dashboard's job.

It is no Dapr app (it has no sidecar): it reads every sidecar's /v1.0/metadata with that
sidecar's token, Prometheus, Jaeger and the files `up` wrote, on loopback only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import Layout
from kaya787_launcher.probes import http_ok
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK

OPS_CONSOLE_PORT = 8090
OPS_CONSOLE_NAME = "ops-console"
OPS_CONSOLE_URL = f"http://{LOOPBACK}:{OPS_CONSOLE_PORT}"


def _python(layout: Layout) -> str:
    venv = layout.root / ".venv" / "bin" / "python"
    return str(venv) if venv.is_file() else sys.executable


def ops_console(layout: Layout, profile: str, issuer: str) -> Managed:
    env = {
        "OPS_ROOT": str(layout.root),
        "OPS_PROFILE": profile,
        "OPS_HOST": LOOPBACK,
        "OPS_PORT": str(OPS_CONSOLE_PORT),
        "OPS_ISSUER": issuer,
        "OPS_IDENTITY_URL": issuer,
        "OPS_PUBLIC_URL": OPS_CONSOLE_URL,
        "PYTHONUNBUFFERED": "1",
    }
    return Managed(
        ProcessSpec(
            OPS_CONSOLE_NAME, [_python(layout), "-m", "kaya787_ops"], Path(layout.root), env
        ),
        http_ok(f"{OPS_CONSOLE_URL}/healthz"),
        {"ops console": OPS_CONSOLE_PORT},
        url=OPS_CONSOLE_URL,
    )
