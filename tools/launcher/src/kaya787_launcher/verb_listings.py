"""The verbs that read: list, components, configurations, mtls [expiry]. None writes."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from kaya787_launcher import devsecrets
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK
from kaya787_launcher.verb_output import age, uptime


def list_apps(stack: Stack) -> list[dict[str, Any]]:
    rows = []
    for app in stack.run_file.apps:
        sidecar = stack.table.get(f"daprd-{app.app_id}")
        process = stack.table.get(f"app-{app.app_id}") if app.has_app else None
        seconds = uptime(sidecar.pid) if sidecar else None
        rows.append(
            {
                "app_id": app.app_id,
                "http_port": app.http_port,
                "grpc_port": app.grpc_port,
                "app_port": app.app_port,
                "metrics_port": app.metrics_port,
                "command": " ".join(app.command) if app.command else None,
                "app_pid": process.pid if process else None,
                "daprd_pid": sidecar.pid if sidecar else None,
                "age": age(seconds),
                "age_seconds": int(seconds) if seconds is not None else None,
                "running": sidecar is not None and (process is not None or not app.has_app),
            }
        )
    return rows


LIST_COLUMNS = ("app_id", "http_port", "grpc_port", "app_port", "app_pid", "daprd_pid", "age")


def _config_doc(path: Path) -> dict[str, Any]:
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "Configuration":
            return doc
    return {}


def configurations(stack: Stack) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((stack.layout.root / "dapr" / "configs").glob("*.yaml")):
        doc = _config_doc(path)
        spec = doc.get("spec") or {}
        acl = spec.get("accessControl") or {}
        used_by = [a.app_id for a in stack.run_file.apps if a.config_file == path.resolve()]
        rows.append(
            {
                "name": (doc.get("metadata") or {}).get("name"),
                "used_by": used_by,
                "mtls": bool((spec.get("mtls") or {}).get("enabled")),
                "workload_cert_ttl": (spec.get("mtls") or {}).get("workloadCertTTL"),
                "sampling_rate": (spec.get("tracing") or {}).get("samplingRate"),
                "acl_default": acl.get("defaultAction"),
                "acl_rules": sum(len(p.get("operations") or []) for p in acl.get("policies") or []),
                "file": str(path.relative_to(stack.layout.root)),
            }
        )
    return rows


def components(stack: Stack) -> list[dict[str, Any]]:
    folder = stack.layout.components(stack.profile)
    rows = []
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "Component":
                continue
            spec = doc.get("spec") or {}
            scopes = list(doc.get("scopes") or [])
            if not scopes and path.parent.parent.name == "state":
                scopes = [path.parent.name]  # an app's own folder: only it loads the file
            rows.append(
                {
                    "name": (doc.get("metadata") or {}).get("name"),
                    "type": spec.get("type"),
                    "version": spec.get("version"),
                    "scopes": scopes,
                    "profile": stack.profile,
                    "file": str(path.relative_to(stack.layout.root)),
                }
            )
    return rows


def mtls_status(stack: Stack) -> list[dict[str, Any]]:
    rows = []
    for app in stack.run_file.apps:
        spec = _config_doc(app.config_file).get("spec") or {}
        rows.append(
            {
                "app_id": app.app_id,
                "mtls": bool((spec.get("mtls") or {}).get("enabled")),
                "sentry": f"{LOOPBACK}:{stack.ports.sentry}",
                "config": str(app.config_file.relative_to(stack.layout.root)),
            }
        )
    return rows


def _peer_certificate(port: int, timeout: float = 3.0) -> bytes | None:
    """The workload certificate a sidecar shows on its internal gRPC port. It shows it
    before asking for ours, so reading it needs no client certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading the certificate, not trusting the peer
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=timeout) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def _cert_row(what: str, cert: x509.Certificate) -> dict[str, Any]:
    left = cert.not_valid_after_utc.timestamp() - time.time()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ids = [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        ids = []
    return {
        "certificate": what,
        "subject": ", ".join(ids) or cert.subject.rfc4514_string(),
        "expires": cert.not_valid_after_utc.isoformat(),
        "expires_in": age(left) if left > 0 else "EXPIRED",
        "expires_in_seconds": int(left),
    }


def mtls_expiry(stack: Stack) -> list[dict[str, Any]]:
    rows = []
    for name, what in ((devsecrets.ROOT_CERT, "trust anchors"), ("issuer.crt", "issuer")):
        path = stack.layout.certs / name
        try:
            rows.append(_cert_row(what, x509.load_pem_x509_certificate(path.read_bytes())))
        except (OSError, ValueError) as exc:
            raise LauncherError(f"cannot read {path}: {exc}; run `make bootstrap`") from exc
    for app in stack.run_file.apps:
        der = _peer_certificate(app.internal_grpc_port)
        if der is None:
            rows.append({"certificate": f"workload {app.app_id}", "subject": "not running"})
        else:
            rows.append(_cert_row(f"workload {app.app_id}", x509.load_der_x509_certificate(der)))
    return rows
