"""The Dapr CLI's daily verbs for the local platform, with the CLI's names and flags where
they make sense: list, logs, invoke, publish, stop, start, mtls [expiry], components,
configurations, dashboard. Every listing prints `-o table` (default), `json` or `yaml`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509

from kaya787_launcher import devsecrets
from kaya787_launcher.gateway import GATEWAY_APP_ID
from kaya787_launcher.ops_console import OPS_CONSOLE_NAME, OPS_CONSOLE_URL
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.probes import wait_until
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK, AppSpec

VERBS = (
    "list",
    "logs",
    "invoke",
    "publish",
    "stop",
    "start",
    "mtls",
    "components",
    "configurations",
    "dashboard",
)
FORMATS = ("table", "json", "yaml")
Out = Callable[[str], None]


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=FORMATS, default="table", help="table (default), json or yaml"
    )


def _app_id(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("app_id", nargs="?", help=f"the app-id {what}")
    parser.add_argument("-a", "--app-id", dest="app_id_flag", help="the same, as the dapr CLI")


def add_parsers(sub: Any) -> None:
    """Add the verbs to `kaya787`'s subcommands."""
    _output(sub.add_parser("list", help="every app-id: ports, pids, age (like `dapr list`)"))

    logs = sub.add_parser("logs", help="print an app's log (or its sidecar's with --sidecar)")
    _app_id(logs, "whose log to print")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--sidecar", action="store_true", help="the daprd sidecar's log")
    logs.add_argument("--tail", type=int, default=100, help="lines to start with (default 100)")
    logs.add_argument(
        "--follow-seconds", type=float, default=None, help=argparse.SUPPRESS
    )  # bounded follow, for tests

    invoke = sub.add_parser(
        "invoke",
        help="call an app's method through a sidecar (default: the gateway's, whose access"
        " rules are the public ones)",
    )
    invoke.add_argument("-a", "--app-id", dest="target", required=True, help="callee app-id")
    invoke.add_argument("-m", "--method", required=True, help="the path, e.g. healthz")
    invoke.add_argument("-v", "--verb", default="POST", help="HTTP verb (default POST)")
    invoke.add_argument("-d", "--data", default=None, help="JSON body")
    invoke.add_argument("--data-file", default=None, help="file with the JSON body")
    invoke.add_argument(
        "--header", action="append", default=[], help="extra header 'name: value' (repeat)"
    )
    invoke.add_argument(
        "--via", default=GATEWAY_APP_ID, help="the calling sidecar's app-id (default gateway)"
    )

    publish = sub.add_parser("publish", help="publish a CloudEvent through a sidecar")
    publish.add_argument(
        "-i", "--publish-app-id", required=True, help="the app whose sidecar publishes"
    )
    publish.add_argument("-p", "--pubsub", default="pubsub", help="pub/sub component name")
    publish.add_argument("-t", "--topic", required=True)
    publish.add_argument("-d", "--data", default=None, help="JSON payload")
    publish.add_argument("--data-file", default=None, help="file with the JSON payload")
    publish.add_argument(
        "-m", "--metadata", default=None, help="JSON object of publish metadata (partitionKey…)"
    )

    for verb, text in (
        ("stop", "stop an app and its sidecar (or one of them)"),
        ("start", "start an app's sidecar and the app (or one of them) and wait until healthy"),
    ):
        cmd = sub.add_parser(verb, help=text)
        _app_id(cmd, f"to {verb}")
        part = cmd.add_mutually_exclusive_group()
        part.add_argument("--sidecar", action="store_true", help="the daprd sidecar only")
        part.add_argument("--app-only", action="store_true", help="the app only")
        if verb == "stop":
            cmd.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")

    mtls = sub.add_parser("mtls", help="is mTLS on for every sidecar (from its Configuration)")
    _output(mtls)
    mtls_sub = mtls.add_subparsers(dest="mtls_command")
    expiry = mtls_sub.add_parser(
        "expiry",
        help="when the trust anchors, Sentry's issuer and each sidecar's workload"
        " certificate expire",
    )
    _output(expiry)

    _output(sub.add_parser("components", help="the running profile's components and scopes"))
    _output(sub.add_parser("configurations", help="every Dapr Configuration: mTLS, tracing, ACL"))
    dashboard = sub.add_parser(
        "dashboard", help=f"start the ops console alone (if not running) at {OPS_CONSOLE_URL}"
    )
    dashboard.add_argument("--timeout", type=float, default=60.0)


# -------------------------------------------------------------------- rendering
def render(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "yaml":
        return yaml.safe_dump(rows, sort_keys=False, default_flow_style=False).rstrip()
    columns = list(columns or (rows[0].keys() if rows else []))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _age(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _uptime(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    return time.time() - (btime + ticks / os.sysconf("SC_CLK_TCK"))


# ------------------------------------------------------------------------ verbs
def list_apps(stack: Stack) -> list[dict[str, Any]]:
    rows = []
    for app in stack.run_file.apps:
        sidecar = stack.table.get(f"daprd-{app.app_id}")
        process = stack.table.get(f"app-{app.app_id}") if app.has_app else None
        uptime = _uptime(sidecar.pid) if sidecar else None
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
                "age": _age(uptime),
                "age_seconds": int(uptime) if uptime is not None else None,
                "running": sidecar is not None and (process is not None or not app.has_app),
            }
        )
    return rows


LIST_COLUMNS = ("app_id", "http_port", "grpc_port", "app_port", "app_pid", "daprd_pid", "age")


def _log_path(stack: Stack, app: AppSpec, sidecar: bool) -> Path:
    if not app.has_app and not sidecar:
        raise LauncherError(f"{app.app_id} has no app; use --sidecar (or `kaya787 logs nginx`)")
    return stack.table.log_path(f"daprd-{app.app_id}" if sidecar else f"app-{app.app_id}")


def logs(
    stack: Stack,
    app_id: str,
    *,
    sidecar: bool,
    follow: bool,
    tail: int,
    out: Out,
    follow_seconds: float | None = None,
) -> None:
    path = _log_path(stack, stack.run_file.app(app_id), sidecar)
    if not path.is_file():
        raise LauncherError(f"no log yet at {path}")
    with path.open("r", errors="replace") as handle:
        lines = handle.readlines()
        for line in lines[-tail:] if tail > 0 else []:
            out(line.rstrip("\n"))
        if not follow:
            return
        deadline = None if follow_seconds is None else time.monotonic() + follow_seconds
        while deadline is None or time.monotonic() < deadline:
            line = handle.readline()
            if line:
                out(line.rstrip("\n"))
            else:
                time.sleep(0.2)


def _body(data: str | None, data_file: str | None) -> bytes | None:
    if data is not None and data_file is not None:
        raise LauncherError("give --data or --data-file, not both")
    raw = Path(data_file).read_text() if data_file else data
    if raw is None:
        return None
    try:
        json.loads(raw)
    except ValueError as exc:
        raise LauncherError(f"the data is not JSON: {exc}") from exc
    return raw.encode()


def _sidecar_url(stack: Stack, app_id: str) -> tuple[str, dict[str, str]]:
    app = stack.run_file.app(app_id)
    token = stack.tokens_for(app_id)["dapr_api_token"]
    return f"http://{LOOPBACK}:{app.http_port}", {"dapr-api-token": token}


def invoke(
    stack: Stack,
    target: str,
    method: str,
    *,
    verb: str,
    data: bytes | None,
    headers: list[str],
    via: str,
) -> httpx.Response:
    stack.run_file.app(target)  # a known app-id, or a clear error
    base, auth = _sidecar_url(stack, via)
    extra: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep:
            raise LauncherError(f"--header {header!r}: expected 'name: value'")
        extra[name.strip()] = value.strip()
    if data is not None:
        extra.setdefault("content-type", "application/json")
    try:
        return httpx.request(
            verb.upper(),
            f"{base}/v1.0/invoke/{target}/method/{method.lstrip('/')}",
            content=data,
            headers={**extra, **auth},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        raise LauncherError(f"{via}'s sidecar did not answer: {exc}") from exc


def publish(
    stack: Stack,
    publisher: str,
    pubsub: str,
    topic: str,
    data: bytes | None,
    metadata: str | None,
) -> httpx.Response:
    base, auth = _sidecar_url(stack, publisher)
    params: dict[str, str] = {}
    if metadata:
        try:
            parsed = json.loads(metadata)
        except ValueError as exc:
            raise LauncherError(f"--metadata is not JSON: {exc}") from exc
        params = {f"metadata.{k}": str(v) for k, v in dict(parsed).items()}
    try:
        return httpx.post(
            f"{base}/v1.0/publish/{pubsub}/{topic}",
            content=data or b"{}",
            params=params,
            headers={**auth, "content-type": "application/json"},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        raise LauncherError(f"{publisher}'s sidecar did not answer: {exc}") from exc


def stop(stack: Stack, app_id: str, *, sidecar: bool, app_only: bool, kill: bool, out: Out) -> None:
    app = stack.run_file.app(app_id)
    if not sidecar and app.has_app:
        out(f"stopping app-{app_id} ...")
        stack.stop_app(app_id, kill=kill)
    if not app_only:
        out(f"stopping daprd-{app_id} ...")
        stack.stop_sidecar(app_id, kill=kill)
    out(f"stopped {app_id}")


def _alive(stack: Stack, name: str) -> Callable[[], bool]:
    return lambda: stack.table.get(name) is not None


def start(
    stack: Stack, app_id: str, *, sidecar: bool, app_only: bool, out: Out, timeout: float = 90.0
) -> None:
    app = stack.run_file.app(app_id)
    wanted = []
    if not app_only:
        wanted.append(stack.sidecar(app))
    if not sidecar and app.has_app:
        wanted.append(stack.app(app))
    # Both at once, as `up` does: the sidecar reports healthy only once its app listens,
    # and the app waits for its sidecar.
    for managed in wanted:
        out(f"starting {managed.spec.name} ...")
        stack.table.start(managed.spec)
    for managed in wanted:
        name = managed.spec.name
        out(f"  waiting until {name} is healthy ...")
        if not wait_until(managed.probe, timeout, _alive(stack, name)):
            raise LauncherError(
                f"{name} did not become healthy; last lines of"
                f" {stack.table.log_path(name)}:\n{stack.table.tail(name)}"
            )
    out(f"{app_id} is up")


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
        "expires_in": _age(left) if left > 0 else "EXPIRED",
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


def dashboard(stack: Stack, timeout: float, out: Out) -> str:
    managed = stack.ops_console()
    if stack.table.get(OPS_CONSOLE_NAME) is None:
        out(f"starting the ops console ({OPS_CONSOLE_URL}) ...")
    stack.start_service(OPS_CONSOLE_NAME, timeout=timeout)
    return managed.url


# ---------------------------------------------------------------------- dispatch
def _which(args: argparse.Namespace) -> str:
    app_id = args.app_id_flag or args.app_id
    if not app_id:
        raise LauncherError(f"`kaya787 {args.command}` needs an app-id")
    return str(app_id)


def _print_response(response: httpx.Response, out: Out) -> int:
    if response.content:
        out(response.text)
    if response.status_code >= 400:
        raise LauncherError(f"HTTP {response.status_code}")
    return 0


def run(stack: Stack, args: argparse.Namespace, out: Out) -> int:
    command = args.command
    fmt = getattr(args, "output", "table")
    if command == "list":
        out(render(list_apps(stack), fmt, LIST_COLUMNS if fmt == "table" else None))
    elif command == "logs":
        logs(
            stack,
            _which(args),
            sidecar=args.sidecar,
            follow=args.follow,
            tail=args.tail,
            out=out,
            follow_seconds=args.follow_seconds,
        )
    elif command == "invoke":
        response = invoke(
            stack,
            args.target,
            args.method,
            verb=args.verb,
            data=_body(args.data, args.data_file),
            headers=args.header,
            via=args.via,
        )
        return _print_response(response, out)
    elif command == "publish":
        response = publish(
            stack,
            args.publish_app_id,
            args.pubsub,
            args.topic,
            _body(args.data, args.data_file),
            args.metadata,
        )
        _print_response(response, out)
        out(f"event published to {args.pubsub}/{args.topic}")
    elif command == "stop":
        stop(
            stack,
            _which(args),
            sidecar=args.sidecar,
            app_only=args.app_only,
            kill=args.kill,
            out=out,
        )
    elif command == "start":
        start(stack, _which(args), sidecar=args.sidecar, app_only=args.app_only, out=out)
    elif command == "mtls":
        if args.mtls_command == "expiry":
            out(
                render(mtls_expiry(stack), fmt, ("certificate", "subject", "expires", "expires_in"))
            )
        else:
            out(render(mtls_status(stack), fmt))
    elif command == "components":
        out(render(components(stack), fmt, ("name", "type", "version", "scopes", "file")))
    elif command == "configurations":
        columns = ("name", "used_by", "mtls", "sampling_rate", "acl_default", "acl_rules", "file")
        out(render(configurations(stack), fmt, columns if fmt == "table" else None))
    elif command == "dashboard":
        out(dashboard(stack, args.timeout, out))
    return 0
