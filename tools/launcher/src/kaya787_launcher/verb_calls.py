"""The verbs that act on the running platform: logs, invoke, publish, stop, start, dashboard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from kaya787_launcher.ops_console import OPS_CONSOLE_NAME, OPS_CONSOLE_URL
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.probes import wait_until
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import LOOPBACK, AppSpec
from kaya787_launcher.verb_output import Out


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


def body(data: str | None, data_file: str | None) -> bytes | None:
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
    stack.prepare()  # the tokens and certificates, as `up` makes them, before planning
    wanted = []
    if not app_only:
        wanted.append(stack.sidecar(app))
    if not sidecar and app.has_app:
        wanted.append(stack.app(app))
    # Both at once, as `up` does: the sidecar reports healthy only once its app listens,
    # and the app waits for its sidecar.
    for managed in wanted:
        out(f"starting {managed.spec.name} ...")
        stack.start_process(managed)
    for managed in wanted:
        name = managed.spec.name
        out(f"  waiting until {name} is healthy ...")
        if not wait_until(managed.probe, timeout, _alive(stack, name)):
            raise LauncherError(
                f"{name} did not become healthy; last lines of"
                f" {stack.table.log_path(name)}:\n{stack.table.tail(name)}"
            )
    out(f"{app_id} is up")


def dashboard(stack: Stack, timeout: float, out: Out) -> str:
    managed = stack.ops_console()
    if stack.table.get(OPS_CONSOLE_NAME) is None:
        out(f"starting the ops console ({OPS_CONSOLE_URL}) ...")
    stack.start_service(OPS_CONSOLE_NAME, timeout=timeout)
    return managed.url
