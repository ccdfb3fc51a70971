"""Settings of the ops console (environment, prefix OPS_)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPS_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    # Off loopback only where a NetworkPolicy and the gateway stand in front (a pod).
    allow_non_loopback: bool = False
    # Where apps are found: the launcher's run file and pid files, or the Kubernetes API.
    discovery: Literal["local", "kubernetes"] = "local"
    # The repository (local discovery): dapr/dapr.yaml, components/, var/.
    root: Path = Path(".")
    profile: str = Field(default="local", pattern=r"^[a-z0-9-]+$")
    prometheus_url: str = "http://127.0.0.1:9090"
    jaeger_url: str = "http://127.0.0.1:16686"
    # The issuer's public origin (the browser is sent there to sign in) and where this
    # service itself reaches identity's token endpoint and JWKS (the same gateway locally).
    issuer: str = "http://127.0.0.1:8080"
    identity_url: str = "http://127.0.0.1:8080"
    audience: str = "kaya787-api"
    client_id: str = "kaya787-ops-console"
    # This console's own origin as the browser sees it: the redirect_uri is built from it.
    public_url: str = "http://127.0.0.1:8090"
    required_scope: str = "ops:read"
    # Cookies marked Secure only behind TLS (the k8s ingress); plain http on loopback.
    secure_cookies: bool = False
    kubernetes_api: str = "https://kubernetes.default.svc"
    kubernetes_token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    kubernetes_ca_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    timeout_seconds: float = Field(default=3.0, gt=0, le=60)

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> OpsSettings:
        if self.allow_non_loopback or self.host == "localhost":
            return self
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"OPS_HOST must be a loopback address, got {self.host!r}")
        return self

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/auth/callback"
