"""Pure rules of the ops console: what a run file, a component, a Configuration, a trace
and a certificate say, shaped for the page. No I/O, no FastAPI, no HTTP clients."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

APP_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
TRACE_ID = re.compile(r"^[0-9a-f]{16,32}$")
# Transaction ids are opaque, but short and URL-safe (uuid-like); anything else is refused
# before it reaches a query.
TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
TRANSACTION_TAG = "kaya787.transaction_id"


class InvalidInput(ValueError):
    """Something a caller sent that can never be answered (a 422, not a 500)."""


def checked_app_id(value: str) -> str:
    if not APP_ID.fullmatch(value):
        raise InvalidInput("An app-id is lower-case letters, digits and dashes.")
    return value


def checked_trace_id(value: str) -> str:
    lowered = value.strip().lower()
    if not TRACE_ID.fullmatch(lowered):
        raise InvalidInput("A trace id is 16 to 32 hexadecimal digits.")
    return lowered


def checked_transaction_id(value: str) -> str:
    if not TRANSACTION_ID.fullmatch(value.strip()):
        raise InvalidInput("A transaction id is up to 100 letters, digits, '-' or '_'.")
    return value.strip()


@dataclass(frozen=True)
class AppTarget:
    """One sidecar the console watches (and the app behind it, if any)."""

    app_id: str
    http_url: str  # the sidecar's HTTP API
    app_url: str | None  # the app itself (health only)
    ports: Mapping[str, int] = field(default_factory=dict)
    config_file: str | None = None
    resources: tuple[str, ...] = ()
    replicas: int = 1


def run_file_targets(doc: Mapping[str, Any], host: str = "127.0.0.1") -> list[AppTarget]:
    """The apps of a Dapr multi-app run file (`dapr/dapr.yaml`)."""
    common: Mapping[str, Any] = doc.get("common") or {}
    targets = []
    for raw in doc.get("apps") or []:
        app_id = str(raw.get("appID", ""))
        if not APP_ID.fullmatch(app_id):
            continue
        app_port = raw.get("appPort") if raw.get("command") else None
        ports = {
            "app": app_port,
            "http": raw.get("daprHTTPPort"),
            "grpc": raw.get("daprGRPCPort"),
            "internal_grpc": raw.get("daprInternalGRPCPort"),
            "metrics": raw.get("metricsPort"),
        }
        targets.append(
            AppTarget(
                app_id=app_id,
                http_url=f"http://{host}:{raw.get('daprHTTPPort')}",
                app_url=f"http://{host}:{app_port}" if app_port else None,
                ports={k: int(v) for k, v in ports.items() if isinstance(v, int)},
                config_file=str(raw.get("configFilePath") or common.get("configFilePath") or "")
                or None,
                resources=tuple(
                    str(p) for p in raw.get("resourcesPaths") or common.get("resourcesPaths") or []
                ),
            )
        )
    return targets


def sidecar_summary(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What Dapr's dashboard showed of a sidecar, from its `/v1.0/metadata`."""
    actors = metadata.get("actors") or []
    runtime: Mapping[str, Any] = metadata.get("actorRuntime") or {}
    return {
        "runtime_version": metadata.get("runtimeVersion", ""),
        "enabled_features": list(metadata.get("enabledFeatures") or []),
        "components": [
            {
                "name": c.get("name", ""),
                "type": c.get("type", ""),
                "version": c.get("version", ""),
                "capabilities": list(c.get("capabilities") or []),
            }
            for c in metadata.get("components") or []
        ],
        "subscriptions": [
            {
                "pubsub": s.get("pubsubname", ""),
                "topic": s.get("topic", ""),
                "routes": [r.get("path", "") for r in (s.get("rules") or [])],
                "dead_letter_topic": s.get("deadLetterTopic", ""),
                "type": s.get("type", ""),
            }
            for s in metadata.get("subscriptions") or []
        ],
        "actors": [{"type": a.get("type", ""), "count": a.get("count", 0)} for a in actors],
        # Workflow engines show as internal actor types and as connected workers.
        "workflows": {
            "connected_workers": int((metadata.get("workflows") or {}).get("connectedWorkers", 0)),
            "actor_types": [
                str(a.get("type", "")) for a in actors if "workflow" in str(a.get("type", ""))
            ],
        },
        "actor_runtime": {
            "status": runtime.get("runtimeStatus", ""),
            "host_ready": bool(runtime.get("hostReady", False)),
            "placement": runtime.get("placement", ""),
        },
        "scheduler": metadata.get("scheduler") or {},
        "http_endpoints": [e.get("name", "") for e in metadata.get("httpEndpoints") or []],
        "resiliencies": [r.get("name", "") for r in metadata.get("resiliencies") or []],
        "app_connection": metadata.get("appConnectionProperties") or {},
    }


def component_document(doc: Mapping[str, Any], path: str, text: str) -> dict[str, Any] | None:
    if not isinstance(doc, Mapping) or doc.get("kind") != "Component":
        return None
    spec: Mapping[str, Any] = doc.get("spec") or {}
    return {
        "name": str((doc.get("metadata") or {}).get("name", "")),
        "type": str(spec.get("type", "")),
        "version": str(spec.get("version", "")),
        "scopes": [str(s) for s in doc.get("scopes") or []],
        "file": path,
        "yaml": text,
    }


def configuration_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec: Mapping[str, Any] = doc.get("spec") or {}
    acl: Mapping[str, Any] = spec.get("accessControl") or {}
    rules = []
    for policy in acl.get("policies") or []:
        for operation in policy.get("operations") or []:
            rules.append(
                {
                    "caller": policy.get("appId", ""),
                    "operation": operation.get("name", ""),
                    "verbs": list(operation.get("httpVerb") or []),
                    "action": operation.get("action", ""),
                }
            )
    tracing: Mapping[str, Any] = spec.get("tracing") or {}
    mtls: Mapping[str, Any] = spec.get("mtls") or {}
    return {
        "name": str((doc.get("metadata") or {}).get("name", "")),
        "default_action": acl.get("defaultAction", "allow"),
        "acl": rules,
        "sampling_rate": str(tracing.get("samplingRate", "")),
        "mtls": {
            "enabled": bool(mtls.get("enabled", False)),
            "workload_cert_ttl": mtls.get("workloadCertTTL", ""),
            "allowed_clock_skew": mtls.get("allowedClockSkew", ""),
        },
    }


def resiliency_for(doc: Mapping[str, Any], app_id: str) -> dict[str, Any]:
    """The policies a Resiliency document applies to one app (as callee) and its components."""
    spec: Mapping[str, Any] = doc.get("spec") or {}
    targets: Mapping[str, Any] = spec.get("targets") or {}
    scopes = [str(s) for s in doc.get("scopes") or []]
    if scopes and app_id not in scopes:
        return {}
    policies: Mapping[str, Any] = spec.get("policies") or {}
    applied: dict[str, Any] = {}
    app_target = (targets.get("apps") or {}).get(app_id)
    if app_target:
        applied["app"] = _resolve(app_target, policies)
    components = targets.get("components") or {}
    for name, target in components.items():
        applied[f"component {name}"] = {
            direction: _resolve(value, policies) for direction, value in dict(target).items()
        }
    return applied


def _resolve(target: Mapping[str, Any], policies: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for kind, plural in (
        ("timeout", "timeouts"),
        ("retry", "retries"),
        ("circuitBreaker", "circuitBreakers"),
    ):
        name = target.get(kind)
        if name is None:
            continue
        table = policies.get(plural) or {}
        resolved[kind] = {"name": name, "policy": table.get(name, name)}
    return resolved


def waterfall(trace: Mapping[str, Any]) -> dict[str, Any]:
    """Jaeger's JSON trace as rows of a waterfall: offset and width relative to the trace."""
    spans = list(trace.get("spans") or [])
    processes: Mapping[str, Any] = trace.get("processes") or {}
    if not spans:
        return {"trace_id": trace.get("traceID", ""), "duration_us": 0, "spans": []}
    by_id = {s["spanID"]: s for s in spans}
    parent_of: dict[str, str | None] = {}
    for span in spans:
        parent = None
        for ref in span.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and ref.get("spanID") in by_id:
                parent = ref["spanID"]
                break
        parent_of[span["spanID"]] = parent
    start = min(int(s["startTime"]) for s in spans)
    end = max(int(s["startTime"]) + int(s.get("duration", 0)) for s in spans)
    total = max(1, end - start)
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        children.setdefault(parent_of[span["spanID"]], []).append(span)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: int(s["startTime"])):
            tags = {t.get("key"): t.get("value") for t in span.get("tags") or []}
            process = processes.get(span.get("processID", "")) or {}
            rows.append(
                {
                    "span_id": span["spanID"],
                    "parent_id": parent_of[span["spanID"]],
                    "service": process.get("serviceName", ""),
                    "operation": span.get("operationName", ""),
                    "depth": depth,
                    "start_us": int(span["startTime"]) - start,
                    "duration_us": int(span.get("duration", 0)),
                    "offset_pct": round(100 * (int(span["startTime"]) - start) / total, 3),
                    "width_pct": round(max(0.2, 100 * int(span.get("duration", 0)) / total), 3),
                    "error": tags.get("error") in (True, "true")
                    or tags.get("otel.status_code") == "ERROR",
                }
            )
            walk(span["spanID"], depth + 1)

    walk(None, 0)
    return {
        "trace_id": trace.get("traceID", ""),
        "duration_us": total,
        "services": sorted({r["service"] for r in rows}),
        "spans": rows,
    }


def certificate_info(pem_or_der: bytes, what: str) -> dict[str, Any]:
    cert = (
        x509.load_pem_x509_certificate(pem_or_der)
        if pem_or_der.lstrip().startswith(b"-----")
        else x509.load_der_x509_certificate(pem_or_der)
    )
    not_after = cert.not_valid_after_utc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        uris = []
    return {
        "what": what,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "spiffe_ids": uris,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "expires_in_seconds": int((not_after - datetime.now(UTC)).total_seconds()),
    }


def last_errors(lines: Iterable[str], limit: int = 10) -> list[dict[str, Any]]:
    """The last warning/error entries of a JSON-lines log (ours and daprd's shapes)."""
    found: list[dict[str, Any]] = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        level = str(entry.get("level", "")).lower()
        if level not in ("error", "warning", "warn", "fatal", "critical"):
            continue
        found.append(
            {
                "time": entry.get("timestamp") or entry.get("time") or "",
                "level": level,
                "message": str(entry.get("message") or entry.get("msg") or "")[:500],
                "trace_id": entry.get("trace_id") or "",
            }
        )
    return found[-limit:]


# What each process logs once per start: daprd, and uvicorn (through the kit's JSON logs).
START_MARKERS = {"sidecar": "Starting Dapr Runtime", "app": "Application startup complete."}


def restarts_since(lines: Iterable[str], marker: str, since: datetime) -> int:
    """Starts logged at or after `since` (the platform's `up`), minus the first one."""
    starts = 0
    for line in lines:
        if marker not in line or not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            stamp = str(entry.get("time") or entry.get("timestamp") or "")
            # Go's RFC 3339 has nanoseconds; Python parses microseconds at most.
            when = datetime.fromisoformat(
                re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))
            )
        except (ValueError, AttributeError):
            continue
        if when >= since:
            starts += 1
    return max(0, starts - 1)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
