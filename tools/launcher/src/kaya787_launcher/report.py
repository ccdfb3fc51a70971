"""What `up` prints when the platform is ready, and a sidecar's metadata (read-only)."""

from __future__ import annotations

import json

import httpx

from kaya787_launcher import brokers, devsecrets, observability
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.ops_console import OPS_CONSOLE_URL
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK


def describe(stack: Stack) -> str:
    lines = [
        f"KAYA787 local platform, profile {stack.profile}",
        f"  public API    http://{LOOPBACK}:{GATEWAY_PORT}  (NGINX gateway; see"
        " gateway/routes.yaml)",
    ]
    for app in stack.run_file.apps:
        where = f"app http://{LOOPBACK}:{app.app_port}" if app.has_app else "no app   "
        lines.append(
            f"  {app.app_id:<13} {where}  sidecar http://{LOOPBACK}:{app.http_port}"
            f" (gRPC {app.grpc_port}, metrics {app.metrics_port})"
        )
    p = stack.ports
    lines += [
        f"  control plane sentry {LOOPBACK}:{p.sentry}  placement {LOOPBACK}:{p.placement}"
        f"  scheduler {LOOPBACK}:{p.scheduler}",
        *brokers.describe(stack.profile, p),
        f"  traces        Jaeger query API http://{LOOPBACK}:{observability.JAEGER_QUERY_PORT}"
        f"/api/traces (OTLP {LOOPBACK}:{observability.JAEGER_OTLP_GRPC_PORT} gRPC,"
        f" :{observability.JAEGER_OTLP_HTTP_PORT} HTTP)",
        f"  metrics       Prometheus http://{LOOPBACK}:{observability.PROMETHEUS_PORT}"
        " (apps' /metrics, sidecars, control plane; rules in observability/prometheus)",
        f"  dashboard     http://{LOOPBACK}:{GATEWAY_PORT}/dashboard (live analytics;"
        " needs a token with analytics:read)",
        f"  ops console   {OPS_CONSOLE_URL} (apps, sidecars, control plane, traffic,"
        " traces; sign in with var/secrets/staff.json)",
        f"  logs          {stack.layout.logs}/<name>.log",
        f"  tokens        {stack.layout.secrets / devsecrets.TOKENS_FILE}",
        "  stop with     make down",
    ]
    return "\n".join(lines)


def sidecar_metadata(stack: Stack, app_id: str) -> dict[str, object]:
    app = stack.run_file.app(app_id)
    url = f"http://{LOOPBACK}:{app.http_port}/v1.0/metadata"
    try:
        response = httpx.get(
            url,
            headers={"dapr-api-token": stack.tokens_for(app_id)["dapr_api_token"]},
            timeout=5.0,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise LauncherError(f"{app_id}'s sidecar did not answer at {url}: {exc}") from exc
    body: dict[str, object] = json.loads(response.text)
    return body
