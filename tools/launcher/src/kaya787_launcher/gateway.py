"""The local edge: NGINX rendered from gateway/nginx.conf.template and gateway/routes.yaml.

`nginx()` is a pure builder: it is given the routes, the gateway sidecar's address and
token; the rendered nginx.conf (0600: it holds that token) is written by its prepare step,
which only `up`/`start` run.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from kaya787_launcher.managed import Managed, program
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.probes import http_ok
from kaya787_launcher.processes import ProcessSpec

GATEWAY_APP_ID = "gateway"
GATEWAY_PORT = 8080
JWKS_CACHE_PORT = 8079  # loopback-only, NGINX's own JWKS cache for the JWT pre-check
DEFAULT_CORS_ORIGINS = ("http://127.0.0.1:3000", "http://localhost:3000")
# Must match the apps' ServiceSettings defaults (auth_issuer, auth_audience).
AUTH_ISSUER = f"http://127.0.0.1:{GATEWAY_PORT}"
AUTH_AUDIENCE = "kaya787-api"
TEMPLATE = Path("gateway") / "nginx.conf.template"
ROUTES = Path("gateway") / "routes.yaml"


@dataclass(frozen=True)
class Route:
    path: str
    match: str
    app: str
    auth: bool


@dataclass(frozen=True)
class EdgeLimits:
    rate_per_second: int = 100
    burst: int = 200
    max_body: str = "1m"

    @classmethod
    def from_env(cls) -> EdgeLimits:
        # Load tests raise these; the defaults are what a client sees.
        return cls(
            rate_per_second=int(os.environ.get("KAYA787_GATEWAY_RATE", cls.rate_per_second)),
            burst=int(os.environ.get("KAYA787_GATEWAY_BURST", cls.burst)),
        )


def load_routes(path: Path) -> list[Route]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LauncherError(f"cannot read {path}: {exc}") from exc
    routes = []
    for raw in doc.get("routes", []):
        route = Route(str(raw["path"]), str(raw["match"]), str(raw["app"]), bool(raw["auth"]))
        if route.match not in ("prefix", "exact") or not route.path.startswith("/"):
            raise LauncherError(f"{path}: bad route {raw}")
        routes.append(route)
    return routes


def _location(route: Route) -> str:
    modifier = "=" if route.match == "exact" else "^~"
    auth = "            auth_request /_jwt_check;\n" if route.auth else ""
    return (
        f"        location {modifier} {route.path} {{\n"
        "            if ($request_method = OPTIONS) {\n"
        "                add_header Access-Control-Allow-Origin $cors_origin always;\n"
        "                add_header Access-Control-Allow-Methods"
        ' "GET, POST, PUT, PATCH, DELETE" always;\n'
        "                add_header Access-Control-Allow-Headers"
        ' "Authorization, Content-Type, Idempotency-Key, X-Request-ID" always;\n'
        "                add_header Access-Control-Max-Age 600 always;\n"
        "                add_header Vary Origin always;\n"
        "                return 204;\n"
        "            }\n"
        f"{auth}"
        f"            set $invoke_app {route.app};\n"
        # The proxying happens in @invoke (the template), whose own error pages turn a
        # sidecar's 500 into the edge's 503 problem while the app's 4xx pass untouched.
        "            try_files /-never- @invoke;\n"
        "        }\n"
    )


def render(
    template: Path,
    routes: list[Route],
    *,
    run_dir: Path,
    gateway_dir: Path,
    log_file: Path,
    sidecar: str,
    dapr_api_token: str,
    issuer: str,
    audience: str,
    limits: EdgeLimits,
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS,
) -> str:
    values = {
        "RUN_DIR": str(run_dir),
        "GATEWAY_DIR": str(gateway_dir),
        "LOG_FILE": str(log_file),
        "LISTEN": f"127.0.0.1:{GATEWAY_PORT}",
        "JWKS_CACHE_PORT": str(JWKS_CACHE_PORT),
        "SIDECAR": sidecar,
        "DAPR_API_TOKEN": dapr_api_token,
        "ISSUER": issuer,
        "AUDIENCE": audience,
        "RATE": str(limits.rate_per_second),
        "BURST": str(limits.burst),
        "MAX_BODY": limits.max_body,
        "CORS_ORIGINS": "\n".join(f'        "{o}" $http_origin;' for o in cors_origins),
        "ROUTES": "\n".join(_location(r) for r in routes),
    }
    text = template.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise LauncherError(f"{template}: unfilled placeholders {sorted(set(left))}")
    return text


def nginx(
    layout: Layout,
    routes: list[Route],
    *,
    sidecar_http_port: int,
    dapr_api_token: str,
    limits: EdgeLimits,
) -> Managed:
    """NGINX in front of the gateway's sidecar, with that sidecar's token."""
    root = layout.root
    run_dir = layout.run / "gateway"
    conf = run_dir / "nginx.conf"

    def write_config() -> None:
        text = render(
            root / TEMPLATE,
            routes,
            run_dir=run_dir,
            gateway_dir=root / "gateway",
            log_file=layout.logs / "gateway-access.log",
            sidecar=f"127.0.0.1:{sidecar_http_port}",
            dapr_api_token=dapr_api_token,
            issuer=AUTH_ISSUER,
            audience=AUTH_AUDIENCE,
            limits=limits,
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        # A JWKS cached by an earlier NGINX may hold another identity's keys (the other
        # profile's, or from before a reset): valid tokens would be refused as "unknown key"
        # until it expired. Each NGINX starts with an empty cache.
        shutil.rmtree(run_dir / "jwks-cache", ignore_errors=True)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

    return Managed(
        ProcessSpec("nginx", [program("nginx"), "-c", str(conf), "-p", str(run_dir)], root),
        http_ok(f"http://127.0.0.1:{GATEWAY_PORT}/.well-known/openid-configuration"),
        {"gateway": GATEWAY_PORT, "gateway JWKS cache": JWKS_CACHE_PORT},
        url=f"http://127.0.0.1:{GATEWAY_PORT}",
        prepare=write_config,
    )
