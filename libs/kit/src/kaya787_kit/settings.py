"""Settings every service shares, read from the environment the sidecar launcher sets."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_LENGTH = 32


class ServiceSettings(BaseSettings):
    """Environment names match what `dapr run` and the launcher export (APP_ID, APP_PORT, ...)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_id: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9-]*$")
    app_host: str = "127.0.0.1"
    app_port: int = Field(ge=1, le=65535)
    dapr_http_port: int = Field(default=3500, ge=1, le=65535)
    dapr_grpc_port: int = Field(default=50001, ge=1, le=65535)
    dapr_runtime_host: str = "127.0.0.1"
    # Tokens have no default on purpose: a service that starts without them would accept
    # calls from anything on the host and reach a sidecar that refuses it.
    dapr_api_token: SecretStr
    app_api_token: SecretStr
    sidecar_wait_seconds: float = Field(default=60.0, gt=0)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Access tokens: `iss` is the public issuer (the gateway's origin), `aud` the API.
    auth_issuer: str = "http://127.0.0.1:8080"
    auth_audience: str = "kaya787-api"
    identity_app_id: str = "identity"
    # Request bodies larger than this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # How often the revocation list is reloaded from identity (events bring news sooner),
    # and how old it may get before every token is refused (fail closed).
    revocation_resync_seconds: float = Field(default=10.0, gt=0)
    revocation_max_staleness_seconds: float = Field(default=60.0, gt=0)
    # Requests one replica works on at once; past it: 503 + Retry-After (load_shedding.py).
    # At a replica's ~40 requests/s on this kind of machine, 64 waiting is ~1.5 s of queue:
    # the rest is answered at once rather than timed out by the caller's sidecar (5 s).
    max_in_flight: int = Field(default=64, gt=0, le=100_000)
    # A second listener serving only /metrics, for a scraper that is not on loopback (a
    # pod's Prometheus): the app itself stays on loopback, behind its sidecar. Off locally,
    # where Prometheus scrapes the app port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"  # a pod sets 0.0.0.0: only /metrics is served there
    # Graceful shutdown (kit.shutdown): after SIGTERM the app answers /readyz 503 and keeps
    # serving for the drain window, then stops listening and gives what is in flight the
    # grace period before cancelling it. Kubernetes' terminationGracePeriodSeconds must
    # exceed preStop + drain + grace (tests/unit/test_k8s_shutdown.py checks it).
    shutdown_drain_seconds: float = Field(default=2.0, ge=0, le=60)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("app_host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # Apps are reachable only through their sidecar (pod-local on Kubernetes).
        if value == "localhost":
            return value
        try:
            address = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"APP_HOST must be a loopback address, got {value!r}") from exc
        if not address.is_loopback:
            raise ValueError(f"APP_HOST must be a loopback address, got {value!r}")
        return value

    @field_validator("dapr_api_token", "app_api_token")
    @classmethod
    def _strong_token(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return value

    @property
    def sidecar_http_url(self) -> str:
        return f"http://{self.dapr_runtime_host}:{self.dapr_http_port}"

    @property
    def sidecar_grpc_address(self) -> str:
        return f"{self.dapr_runtime_host}:{self.dapr_grpc_port}"
