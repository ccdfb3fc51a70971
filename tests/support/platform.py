"""The test harness's handle on the real local platform (real daprd, Redis, control plane).

It reuses a platform that is already up (`make up`), or starts one and stops it after the
session. It can stop, kill and restart a single app or sidecar for fault tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from kaya787_launcher.devsecrets import SECRETS_FILE
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK

from tests.support.users import PASSWORD, analyst, register_and_login

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass
class Platform:
    stack: Stack
    started_here: bool
    # (issued at, headers): polls reuse one reporting token instead of a grant per poll.
    _analyst: tuple[float, dict[str, str]] | None = field(default=None, repr=False)

    @property
    def layout(self) -> Layout:
        return self.stack.layout

    def analyst(self) -> dict[str, str]:
        """Headers of a service token with analytics:read (platform-wide figures), reused for
        five minutes (it lives fifteen)."""
        if self._analyst is None or time.monotonic() - self._analyst[0] > 300:
            with self.gateway() as gateway:
                self._analyst = (time.monotonic(), analyst(gateway))
        return self._analyst[1]

    def app_ids(self) -> list[str]:
        """The apps (the gateway's sidecar has none)."""
        return [a.app_id for a in self.stack.run_file.apps if a.has_app]

    def sidecar(self, app_id: str, *, token: bool = True) -> httpx.Client:
        """An HTTP client on `app_id`'s sidecar, acting as that app (its Dapr API token)."""
        spec = self.stack.run_file.app(app_id)
        headers = (
            {"dapr-api-token": self.stack.tokens_for(app_id)["dapr_api_token"]} if token else {}
        )
        return httpx.Client(
            base_url=f"http://{LOOPBACK}:{spec.http_port}", headers=headers, timeout=10.0
        )

    def async_sidecar(self, app_id: str, timeout: float = 10.0) -> httpx.AsyncClient:
        spec = self.stack.run_file.app(app_id)
        return httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{spec.http_port}",
            headers={"dapr-api-token": self.stack.tokens_for(app_id)["dapr_api_token"]},
            timeout=timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    def app_direct(self, app_id: str) -> httpx.Client:
        """A client on the app's own port, bypassing its sidecar (no token unless given)."""
        spec = self.stack.run_file.app(app_id)
        return httpx.Client(base_url=f"http://{LOOPBACK}:{spec.app_port}", timeout=10.0)

    def app_token(self, app_id: str) -> str:
        return self.stack.tokens_for(app_id)["app_api_token"]

    def secret(self, name: str) -> str:
        values: dict[str, str] = json.loads((self.layout.secrets / SECRETS_FILE).read_text())
        return values[name]

    def gateway(self) -> httpx.Client:
        """The public API, as clients see it (NGINX on 127.0.0.1:8080)."""
        return httpx.Client(base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=15.0)

    def public(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.gateway() as gateway:
            return gateway.request(method, path, **kwargs)

    def call(
        self, app_id: str, method: str, path: str, *, via: str = "gateway", **kwargs: Any
    ) -> httpx.Response:
        """Invoke `app_id` through two sidecars (`via`'s, then the target's), over mTLS."""
        with self.sidecar(via) as sidecar:
            return sidecar.request(
                method, f"/v1.0/invoke/{app_id}/method/{path.lstrip('/')}", **kwargs
            )

    def register_and_login(
        self, password: str = PASSWORD, scope: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A fresh user and its token response, through the local gateway."""
        with self.gateway() as gateway:
            return register_and_login(gateway, password, scope)

    def log(self, name: str) -> str:
        return self.stack.table.log_path(name).read_text(errors="replace")


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    every: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll until `check` returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
