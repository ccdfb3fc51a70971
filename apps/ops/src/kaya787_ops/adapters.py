"""HTTP adapters: sidecars' Dapr API, Prometheus' and Jaeger's query APIs, identity's
token endpoint. One shared httpx client, built in the lifespan (main.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from kaya787_ops.domain import AppTarget
from kaya787_ops.ports import Unavailable


async def _json(response_coro: Any, what: str) -> Any:
    try:
        response: httpx.Response = await response_coro
    except httpx.HTTPError as exc:
        raise Unavailable(f"{what}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise Unavailable(f"{what}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise Unavailable(f"{what}: not JSON") from exc


class HttpSidecars:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @staticmethod
    def _headers(token: str | None) -> dict[str, str]:
        return {"dapr-api-token": token} if token else {}

    async def metadata(self, target: AppTarget, token: str | None) -> dict[str, Any]:
        body = await _json(
            self._http.get(f"{target.http_url}/v1.0/metadata", headers=self._headers(token)),
            f"{target.app_id} sidecar metadata",
        )
        return body if isinstance(body, dict) else {}

    async def healthy(self, url: str) -> bool:
        try:
            return (await self._http.get(url)).status_code < 300
        except httpx.HTTPError:
            return False

    async def bulk_state(
        self, target: AppTarget, token: str | None, store: str, keys: list[str]
    ) -> dict[str, Any]:
        items = await _json(
            self._http.post(
                f"{target.http_url}/v1.0/state/{store}/bulk",
                json={"keys": keys},
                headers=self._headers(token),
            ),
            f"{target.app_id} state",
        )
        return {
            str(item.get("key")): item.get("data")
            for item in items or []
            if isinstance(item, dict) and item.get("data") is not None
        }


class PrometheusMetrics:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url.rstrip("/")

    async def query(self, expr: str) -> list[dict[str, Any]]:
        body = await _json(
            self._http.get(f"{self._url}/api/v1/query", params={"query": expr}), "Prometheus"
        )
        return list((body.get("data") or {}).get("result") or [])

    async def query_range(self, expr: str, seconds: int, step: int) -> list[dict[str, Any]]:
        end = time.time()
        body = await _json(
            self._http.get(
                f"{self._url}/api/v1/query_range",
                params={"query": expr, "start": end - seconds, "end": end, "step": step},
            ),
            "Prometheus",
        )
        return list((body.get("data") or {}).get("result") or [])


class JaegerTraces:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url.rstrip("/")

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        try:
            response = await self._http.get(f"{self._url}/api/traces/{trace_id}")
        except httpx.HTTPError as exc:
            raise Unavailable(f"Jaeger: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise Unavailable(f"Jaeger: HTTP {response.status_code}")
        data = response.json().get("data") or []
        return data[0] if data else None

    async def find(self, service: str, tags: dict[str, str]) -> list[str]:
        body = await _json(
            self._http.get(
                f"{self._url}/api/traces",
                params={
                    "service": service,
                    "tags": json.dumps(tags),
                    "lookback": "2h",
                    "limit": "5",
                },
            ),
            "Jaeger",
        )
        return [str(t.get("traceID")) for t in body.get("data") or [] if t.get("traceID")]


class IdentityTokens:
    """The authorization-code exchange (RFC 6749 §4.1.3 + RFC 7636 code_verifier)."""

    def __init__(self, http: httpx.AsyncClient, identity_url: str) -> None:
        self._http = http
        self._url = identity_url.rstrip("/")

    async def exchange(
        self, code: str, verifier: str, client_id: str, redirect_uri: str
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(
                f"{self._url}/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "code_verifier": verifier,
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                },
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"identity: {type(exc).__name__}") from exc
        body: dict[str, Any] = response.json() if response.content else {}
        if response.status_code != 200:
            raise PermissionError(str(body.get("error_description") or body.get("error")))
        return body

    async def jwks(self) -> dict[str, Any]:
        response = await self._http.get(f"{self._url}/.well-known/jwks.json")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
