"""What the console's use cases need from the outside world (Protocols only)."""

from __future__ import annotations

from typing import Any, Protocol

from kaya787_ops.domain import AppTarget


class Unavailable(Exception):
    """A source (sidecar, Prometheus, Jaeger, the Kubernetes API) did not answer."""


class AppDirectory(Protocol):
    """Where the apps are: the launcher's run file locally, Deployments on Kubernetes."""

    async def targets(self) -> list[AppTarget]: ...

    async def processes(self, target: AppTarget) -> dict[str, Any]:
        """pid/replicas, uptime, restarts of the app and its sidecar."""
        ...

    def sidecar_token(self, app_id: str) -> str | None: ...


class Sidecars(Protocol):
    async def metadata(self, target: AppTarget, token: str | None) -> dict[str, Any]: ...

    async def healthy(self, url: str) -> bool: ...

    async def bulk_state(
        self, target: AppTarget, token: str | None, store: str, keys: list[str]
    ) -> dict[str, Any]: ...


class Resources(Protocol):
    """The YAML an operator edits: components, Configurations, resiliency; and logs."""

    async def components(self) -> list[dict[str, Any]]: ...

    async def configurations(self) -> list[dict[str, Any]]: ...

    async def configuration_of(self, target: AppTarget) -> dict[str, Any] | None: ...

    async def resiliency_of(self, app_id: str) -> dict[str, Any]: ...

    async def log_lines(self, app_id: str) -> list[str]: ...


class ControlPlane(Protocol):
    async def services(self) -> list[dict[str, Any]]: ...

    async def certificates(self, targets: list[AppTarget]) -> list[dict[str, Any]]: ...


class Metrics(Protocol):
    async def query(self, expr: str) -> list[dict[str, Any]]: ...

    async def query_range(self, expr: str, seconds: int, step: int) -> list[dict[str, Any]]: ...


class Traces(Protocol):
    async def trace(self, trace_id: str) -> dict[str, Any] | None: ...

    async def find(self, service: str, tags: dict[str, str]) -> list[str]:
        """Trace ids of the service's recent traces with these span tags."""
        ...
