"""Local discovery: the launcher's run file, pid files, tokens, YAML and logs under the
repository (what `kaya787 up` wrote), and the control plane on its loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from kaya787_ops.domain import (
    START_MARKERS,
    AppTarget,
    certificate_info,
    component_document,
    configuration_summary,
    resiliency_for,
    restarts_since,
    run_file_targets,
)

LOOPBACK = "127.0.0.1"
RUN_FILE = Path("dapr") / "dapr.yaml"
LOG_TAIL_BYTES = 256 * 1024
# Control plane ports of the launcher (tools/launcher topology.ControlPlanePorts).
CONTROL_PLANE = {
    "sentry": {"port": 50001, "healthz": 8181, "metrics": 9181},
    "placement": {"port": 50005, "healthz": 8182, "metrics": 9182},
    "scheduler": {"port": 50006, "healthz": 8183, "metrics": 9183},
}


def _load_all(path: Path) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError):
        return []


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _process(pid_file: Path) -> dict[str, Any] | None:
    """A launcher pid file's process if it still runs (same pid *and* start time)."""
    try:
        data = json.loads(pid_file.read_text())
        pid = int(data["pid"])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, KeyError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z" or fields[19] != str(data.get("start_ticks")):
        return None
    started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return {"pid": pid, "uptime_seconds": int(time.time() - started), "started_at": started}


class LocalDirectory:
    def __init__(self, root: Path, profile: str) -> None:
        self._root = root.resolve()
        self._profile = profile
        self._restart_cache: dict[str, tuple[tuple[int, float], int]] = {}

    async def targets(self) -> list[AppTarget]:
        docs = _load_all(self._root / RUN_FILE)
        if not docs or not isinstance(docs[0], dict):
            return []
        base = (self._root / RUN_FILE).parent
        components = self._root / "components"
        found = []
        for target in run_file_targets(docs[0], LOOPBACK):
            resources = []
            for raw in target.resources:
                path = (base / raw).resolve()
                try:  # the running profile's folder, as the launcher swaps it
                    relative = path.relative_to(components)
                    path = components.joinpath(self._profile, *relative.parts[1:])
                except ValueError:
                    pass
                resources.append(str(path))
            config = str((base / target.config_file).resolve()) if target.config_file else None
            found.append(replace(target, resources=tuple(resources), config_file=config))
        return found

    async def processes(self, target: AppTarget) -> dict[str, Any]:
        pids = self._root / "var" / "run" / "pids"
        result: dict[str, Any] = {}
        for role, name in (("app", f"app-{target.app_id}"), ("sidecar", f"daprd-{target.app_id}")):
            process = _process(pids / f"{name}.json")
            if process is not None:
                process["restarts"] = self._restarts(name, START_MARKERS[role])
            result[role] = process
        return result

    def _restarts(self, name: str, marker: str) -> int:
        """Starts of a process in its log since the platform's `up` (the launcher writes
        var/run/profile then), minus one; cached until the log grows."""
        log = self._root / "var" / "log" / f"{name}.log"
        try:
            since = datetime.fromtimestamp(
                (self._root / "var" / "run" / "profile").stat().st_mtime, UTC
            )
            size = log.stat().st_size
        except OSError:
            return 0
        key = (size, since.timestamp())
        cached = self._restart_cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        with log.open("rb") as handle:
            handle.seek(max(0, size - LOG_TAIL_BYTES * 4))
            lines = handle.read().decode(errors="replace").splitlines()
        count = restarts_since(lines, marker, since)
        self._restart_cache[name] = (key, count)
        return count

    def sidecar_token(self, app_id: str) -> str | None:
        try:
            tokens = json.loads((self._root / "var" / "secrets" / "tokens.json").read_text())
            return str(tokens[app_id]["dapr_api_token"])
        except (OSError, ValueError, KeyError):
            return None


class LocalResources:
    def __init__(self, root: Path, profile: str) -> None:
        self._root = root.resolve()
        self._profile = profile

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self._root))

    async def components(self) -> list[dict[str, Any]]:
        folder = self._root / "components" / self._profile
        found = []
        for path in sorted(folder.rglob("*.yaml")):
            text = path.read_text()
            for doc in _load_all(path):
                component = component_document(doc, self._relative(path), text)
                if component is not None:
                    # A component with no scopes in an app's own folder is that app's alone.
                    if not component["scopes"] and path.parent.parent.name == "state":
                        component["scopes"] = [path.parent.name]
                    found.append(component)
        return found

    async def configurations(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted((self._root / "dapr" / "configs").glob("*.yaml")):
            text = path.read_text()
            for doc in _load_all(path):
                if isinstance(doc, dict) and doc.get("kind") == "Configuration":
                    found.append(
                        {
                            **configuration_summary(doc),
                            "file": self._relative(path),
                            "yaml": text,
                        }
                    )
        for path in sorted((self._root / "dapr" / "resiliency").glob("*.yaml")):
            text = path.read_text()
            for doc in _load_all(path):
                if isinstance(doc, dict) and doc.get("kind") == "Resiliency":
                    name = str((doc.get("metadata") or {}).get("name", ""))
                    found.append(
                        {
                            "name": name,
                            "kind": "Resiliency",
                            "file": self._relative(path),
                            "yaml": text,
                        }
                    )
        return found

    async def configuration_of(self, target: AppTarget) -> dict[str, Any] | None:
        if not target.config_file:
            return None
        for doc in _load_all(Path(target.config_file)):
            if isinstance(doc, dict) and doc.get("kind") == "Configuration":
                return configuration_summary(doc)
        return None

    async def resiliency_of(self, app_id: str) -> dict[str, Any]:
        applied: dict[str, Any] = {}
        for path in sorted((self._root / "dapr" / "resiliency").glob("*.yaml")):
            for doc in _load_all(path):
                if isinstance(doc, dict) and doc.get("kind") == "Resiliency":
                    applied.update(resiliency_for(doc, app_id))
        return applied

    async def log_lines(self, app_id: str) -> list[str]:
        lines: list[str] = []
        for name in (f"daprd-{app_id}", f"app-{app_id}"):
            path = self._root / "var" / "log" / f"{name}.log"
            try:
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
                    lines += handle.read().decode(errors="replace").splitlines()[1:]
            except OSError:
                continue
        return lines


def _peer_certificate(port: int, wait_seconds: float) -> bytes | None:
    """The certificate a sidecar presents on its internal gRPC port (its workload cert).

    The server shows it before asking for ours, so no client certificate is needed to read
    it; the connection is dropped right after (the sidecar refuses us, as it should).
    Blocking (a plain socket: asyncio's TLS transport gives up on the server's refusal
    before the certificate can be read), so it runs in a thread.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading the cert, not trusting the peer
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=wait_seconds) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError):
        return None


class LocalControlPlane:
    def __init__(self, http: httpx.AsyncClient, root: Path, timeout: float) -> None:
        self._http = http
        self._root = root.resolve()
        self._timeout = timeout

    def _version(self, name: str) -> str:
        """The version the process itself reports: Dapr's JSON log lines carry `ver`
        (the control-plane binaries have no --version flag)."""
        path = self._root / "var" / "log" / f"{name}.log"
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 16 * 1024))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return "unknown"
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("ver"):
                return str(entry["ver"])
        return "unknown"

    async def services(self) -> list[dict[str, Any]]:
        pids = self._root / "var" / "run" / "pids"
        found = []
        for name, ports in CONTROL_PLANE.items():
            try:
                health = await self._http.get(f"http://{LOOPBACK}:{ports['healthz']}/healthz")
                healthy = health.status_code < 300
            except httpx.HTTPError:
                healthy = False
            found.append(
                {
                    "name": name,
                    "healthy": healthy,
                    "version": self._version(name),
                    "ports": ports,
                    "process": _process(pids / f"{name}.json"),
                }
            )
        return found

    async def certificates(self, targets: list[AppTarget]) -> list[dict[str, Any]]:
        certs = self._root / "var" / "certs"
        found = []
        for file, what in (("ca.crt", "trust anchors"), ("issuer.crt", "issuer (Sentry)")):
            try:
                found.append(certificate_info((certs / file).read_bytes(), what))
            except (OSError, ValueError):
                found.append({"what": what, "error": f"{file} unreadable"})
        for target in targets:
            port = target.ports.get("internal_grpc")
            der = await asyncio.to_thread(_peer_certificate, port, self._timeout) if port else None
            if der is None:
                found.append({"what": f"workload {target.app_id}", "error": "no answer"})
            else:
                found.append(certificate_info(der, f"workload {target.app_id}"))
        return found
