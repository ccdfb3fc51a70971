"""The console's use cases: gather what the page shows from the ports, in parallel, and
say plainly what did not answer instead of failing the whole view."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from kaya787_ops.domain import (
    TRANSACTION_TAG,
    AppTarget,
    checked_app_id,
    checked_trace_id,
    checked_transaction_id,
    last_errors,
    sidecar_summary,
    waterfall,
)
from kaya787_ops.ports import (
    AppDirectory,
    ControlPlane,
    Metrics,
    Resources,
    Sidecars,
    Traces,
    Unavailable,
)

# Probes and scrapes are not traffic: without this every chart would show Prometheus.
NOT_TRAFFIC = 'route!~"/metrics|/healthz|/readyz"'
QUERIES = {
    "request_rate": f"sum by (service) (rate(kaya787_http_requests_total{{{NOT_TRAFFIC}}}[1m]))",
    # `or … * 0`: a service without a single 5xx has an error rate of 0, not no value.
    "error_rate": (
        f'sum by (service) (rate(kaya787_http_requests_total{{{NOT_TRAFFIC},status=~"5.."}}[1m]))'
        f" or sum by (service) (rate(kaya787_http_requests_total{{{NOT_TRAFFIC}}}[1m])) * 0"
    ),
    "p99_seconds": (
        "histogram_quantile(0.99, sum by (service, le) "
        f"(rate(kaya787_http_request_duration_seconds_bucket{{{NOT_TRAFFIC}}}[5m])))"
    ),
}
GATEWAY_RATE = 'sum by (app_id) (rate(dapr_http_server_request_count{app_id="gateway"}[1m]))'
SUBSCRIPTION_QUERIES = {
    "events_per_second": "sum by (service, topic) (rate(kaya787_events_processed_total[2m]))",
    "delay_p99_seconds": (
        "histogram_quantile(0.99, sum by (service, topic, le) "
        "(rate(kaya787_event_processing_delay_seconds_bucket[5m])))"
    ),
    "dropped_total": 'sum by (service, topic) (kaya787_events_processed_total{outcome="drop"})',
}
DEAD_LETTERS = "sum by (topic) (kaya787_analytics_dead_letters_total)"
CHART_SECONDS = 15 * 60
CHART_STEP = 15
TRANSACTIONS_APP = "transactions"
PENDING_SHARDS = 8  # transactions' sharded list of non-final pay-ins and payouts
STATESTORE = "statestore"


class NotFound(LookupError):
    pass


def _by(results: list[dict[str, Any]], label: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for row in results:
        try:
            value = float(row["value"][1])
        except (KeyError, IndexError, ValueError):
            continue
        if value == value:  # NaN (no requests in the window) shows as nothing
            values[str(row.get("metric", {}).get(label, ""))] = value
    return values


class OpsConsole:
    def __init__(
        self,
        *,
        directory: AppDirectory,
        sidecars: Sidecars,
        resources: Resources,
        control_plane: ControlPlane,
        metrics: Metrics,
        traces: Traces,
        profile: str,
    ) -> None:
        self._directory = directory
        self._sidecars = sidecars
        self._resources = resources
        self._control_plane = control_plane
        self._metrics = metrics
        self._traces = traces
        self._profile = profile

    # ------------------------------------------------------------------- apps
    async def _overview(self, target: AppTarget) -> dict[str, Any]:
        token = self._directory.sidecar_token(target.app_id)
        sidecar_ok, app_ok, processes = await asyncio.gather(
            self._sidecars.healthy(f"{target.http_url}/v1.0/healthz"),
            self._sidecars.healthy(f"{target.app_url}/healthz")
            if target.app_url
            else asyncio.sleep(0, None),
            self._directory.processes(target),
        )
        row: dict[str, Any] = {
            "app_id": target.app_id,
            "ports": dict(target.ports),
            "replicas": target.replicas,
            "health": {"sidecar": sidecar_ok, "app": app_ok},
            "processes": processes,
        }
        try:
            row["sidecar"] = sidecar_summary(await self._sidecars.metadata(target, token))
        except Unavailable as exc:
            row["sidecar"] = None
            row["sidecar_error"] = str(exc)
        return row

    async def apps(self) -> dict[str, Any]:
        targets = await self._directory.targets()
        rows = await asyncio.gather(*(self._overview(t) for t in targets))
        return {"profile": self._profile, "apps": list(rows)}

    async def _target(self, app_id: str) -> AppTarget:
        checked_app_id(app_id)
        for target in await self._directory.targets():
            if target.app_id == app_id:
                return target
        raise NotFound(f"No app {app_id!r} is known.")

    async def app(self, app_id: str) -> dict[str, Any]:
        target = await self._target(app_id)
        row = await self._overview(target)
        row["configuration"] = await self._resources.configuration_of(target)
        row["resiliency"] = await self._resources.resiliency_of(app_id)
        row["last_errors"] = last_errors(await self._resources.log_lines(app_id))
        return row

    # ---------------------------------------------------- control plane, YAML
    async def control_plane(self) -> dict[str, Any]:
        targets = await self._directory.targets()
        services, certificates = await asyncio.gather(
            self._control_plane.services(), self._control_plane.certificates(targets)
        )
        return {"services": services, "certificates": certificates}

    async def components(self) -> dict[str, Any]:
        return {"profile": self._profile, "components": await self._resources.components()}

    async def configurations(self) -> dict[str, Any]:
        return {"configurations": await self._resources.configurations()}

    # ---------------------------------------------------------------- traffic
    async def traffic(self) -> dict[str, Any]:
        try:
            instant = await asyncio.gather(*(self._metrics.query(q) for q in QUERIES.values()))
            series = await self._metrics.query_range(
                QUERIES["request_rate"], CHART_SECONDS, CHART_STEP
            )
            gateway = await self._metrics.query(GATEWAY_RATE)
            subs = await asyncio.gather(
                *(self._metrics.query(q) for q in SUBSCRIPTION_QUERIES.values())
            )
            dead = await self._metrics.query(DEAD_LETTERS)
        except Unavailable as exc:
            return {"error": str(exc), "apps": [], "subscriptions": [], "dead_letters": {}}
        values = {name: _by(rows, "service") for name, rows in zip(QUERIES, instant, strict=True)}
        charts = {
            str(row.get("metric", {}).get("service", "")): [
                [float(t), float(v)] for t, v in row.get("values", [])
            ]
            for row in series
        }
        services = sorted(set(charts) | {s for v in values.values() for s in v})
        apps = [
            {
                "service": service,
                **{name: values[name].get(service) for name in QUERIES},
                "series": charts.get(service, []),
            }
            for service in services
        ]
        keyed: dict[tuple[str, str], dict[str, Any]] = {}
        for name, rows in zip(SUBSCRIPTION_QUERIES, subs, strict=True):
            for row in rows:
                metric = row.get("metric", {})
                key = (str(metric.get("service", "")), str(metric.get("topic", "")))
                entry = keyed.setdefault(key, {"service": key[0], "topic": key[1]})
                try:
                    value = float(row["value"][1])
                except (KeyError, IndexError, ValueError):
                    continue
                entry[name] = value if value == value else None
        return {
            "window_seconds": CHART_SECONDS,
            "apps": apps,
            "gateway_request_rate": _by(gateway, "app_id").get("gateway"),
            "subscriptions": sorted(keyed.values(), key=lambda e: (e["service"], e["topic"])),
            "dead_letters": _by(dead, "topic"),
        }

    async def pending_transactions(self) -> dict[str, Any]:
        """Pay-ins and payouts not final yet, oldest first: the reconciler's own list."""
        try:
            target = await self._target(TRANSACTIONS_APP)
            shards = await self._sidecars.bulk_state(
                target,
                self._directory.sidecar_token(TRANSACTIONS_APP),
                STATESTORE,
                [f"pending:{k}" for k in range(PENDING_SHARDS)],
            )
        except (NotFound, Unavailable) as exc:
            return {"error": str(exc), "transactions": []}
        now = time.time()
        rows = []
        for shard in shards.values():
            if not isinstance(shard, dict):
                continue
            for transaction_id, created_at in shard.items():
                try:
                    age = now - datetime.fromisoformat(str(created_at)).timestamp()
                except ValueError:
                    age = None
                rows.append(
                    {
                        "id": transaction_id,
                        "created_at": created_at,
                        "age_seconds": int(age) if age is not None else None,
                    }
                )
        rows.sort(key=lambda r: str(r["created_at"]))
        return {"transactions": rows}

    # ----------------------------------------------------------------- traces
    async def trace(self, trace_id: str) -> dict[str, Any]:
        found = await self._traces.trace(checked_trace_id(trace_id))
        if found is None:
            raise NotFound(f"Jaeger has no trace {trace_id}.")
        return waterfall(found)

    async def trace_of_transaction(self, transaction_id: str) -> dict[str, Any]:
        tag = {TRANSACTION_TAG: checked_transaction_id(transaction_id)}
        ids = await self._traces.find(TRANSACTIONS_APP, tag)
        if not ids:
            raise NotFound(f"No trace of transaction {transaction_id} in Jaeger (yet).")
        return await self.trace(ids[0])
