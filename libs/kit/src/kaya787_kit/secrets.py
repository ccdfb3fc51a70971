"""Secrets through the sidecar's secret store (a local file in dev, Kubernetes in k8s)."""

from __future__ import annotations

from dapr.aio.clients import DaprClient


class SecretNotFound(KeyError):
    pass


class DaprSecrets:
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def get(self, name: str) -> str:
        response = await self._client.get_secret(self._store, name)
        secret: dict[str, str] = dict(response.secret)
        if name not in secret:
            raise SecretNotFound(name)
        return secret[name]
