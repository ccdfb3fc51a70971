"""The launcher's dapr-CLI verbs against the running platform, run as an operator runs
them (the `kaya787` command in a subprocess): list, logs, invoke, publish, stop/start,
mtls (expiry), components, configurations, dashboard, and --help."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.ledger import transfer_body
from tests.support.platform import ROOT, Platform
from tests.support.signin import (
    CONSOLE,
    Authorization,
    exchange,
    redirect_params,
    sign_in,
    staff_credentials,
)

pytestmark = pytest.mark.e2e

KAYA787 = str(ROOT / ".venv" / "bin" / "kaya787")
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


def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KAYA787, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(*args: str) -> str:
    done = cli(*args)
    assert done.returncode == 0, f"kaya787 {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_help_lists_every_verb() -> None:
    text = ok("--help")
    for verb in VERBS:
        assert verb in text
    assert "--output" in ok("list", "--help")
    assert "--follow" in ok("logs", "--help")


def test_list_shows_every_app_as_table_json_and_yaml(platform: Platform) -> None:
    table = ok("list")
    assert table.splitlines()[0].split()[:3] == ["APP_ID", "HTTP_PORT", "GRPC_PORT"]
    rows = json.loads(ok("list", "-o", "json"))
    by_id = {row["app_id"]: row for row in rows}
    assert set(by_id) == {a.app_id for a in platform.stack.run_file.apps}
    for app_id in platform.app_ids():
        row = by_id[app_id]
        assert row["running"] is True
        assert isinstance(row["app_pid"], int)
        assert isinstance(row["daprd_pid"], int)
        assert row["age_seconds"] >= 0
        assert row["http_port"] == platform.stack.run_file.app(app_id).http_port
    assert yaml.safe_load(ok("list", "-o", "yaml")) == rows or len(
        yaml.safe_load(ok("list", "-o", "yaml"))
    ) == len(rows)


def test_logs_prints_an_apps_and_its_sidecars_log(platform: Platform) -> None:
    app_lines = ok("logs", "identity", "--tail", "5").splitlines()
    assert 0 < len(app_lines) <= 5
    assert all(json.loads(line)["service"] for line in app_lines if line.startswith("{"))
    sidecar = ok("logs", "--app-id", "identity", "--sidecar", "--tail", "3").splitlines()
    assert any('"scope":"dapr.' in line for line in sidecar)
    # -f keeps printing what arrives: requests made while it follows show up. They repeat
    # through the window, so a slow start of the command (a loaded machine) cannot miss them.
    follower = subprocess.Popen(
        [KAYA787, "logs", "identity", "-f", "--tail", "0", "--follow-seconds", "12"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and follower.poll() is None:
        platform.public("GET", "/.well-known/openid-configuration")
        time.sleep(0.5)
    out, _ = follower.communicate(timeout=30)
    assert "/.well-known/openid-configuration" in out
    unknown = cli("logs", "nobody")
    assert unknown.returncode == 2
    assert "unknown app" in unknown.stderr


def test_invoke_reaches_identitys_healthz_through_a_sidecar() -> None:
    out = ok("invoke", "--app-id", "identity", "--method", "healthz", "--verb", "GET")
    assert json.loads(out) == {"status": "ok"}
    # The gateway's sidecar may not call internal routes: the ACL answers, the CLI fails.
    denied = cli("invoke", "-a", "identity", "-m", "internal/revocations", "-v", "GET")
    assert denied.returncode == 2
    assert "403" in denied.stderr
    bad = cli("invoke", "-a", "identity", "-m", "healthz", "-d", "{not json")
    assert bad.returncode == 2
    assert "not JSON" in bad.stderr


def test_publish_sends_an_event_within_the_topic_scopes() -> None:
    event = {"token_id": f"cli-test-{uuid.uuid4().hex}", "expires_at": int(time.time()) + 60}
    out = ok(
        "publish",
        "--publish-app-id",
        "identity",
        "--pubsub",
        "pubsub",
        "--topic",
        "identity.token-revoked.v1",
        "--data",
        json.dumps(event),
    )
    assert "event published" in out
    # transactions may publish on no topic: the topic scopes refuse it.
    refused = cli(
        "publish", "-i", "transactions", "-t", "identity.token-revoked.v1", "-d", json.dumps(event)
    )
    assert refused.returncode == 2
    assert "403" in refused.stderr


def _transfer_completes(platform: Platform) -> None:
    _, issued = platform.register_and_login()
    who = {"authorization": f"Bearer {issued['access_token']}"}
    source = platform.public("POST", "/api/v1/accounts", json={"currency": "USD"}, headers=who)
    target = platform.public("POST", "/api/v1/accounts", json={"currency": "USD"}, headers=who)
    assert source.status_code == 201, source.text
    transfer = platform.public(
        "POST",
        "/api/v1/transfers",
        headers={**who, "Idempotency-Key": uuid.uuid4().hex},
        json=transfer_body(source.json()["id"], target.json()["id"], 1),
    )
    # An empty account: the ledger answers, final at once, with a business refusal.
    assert transfer.status_code == 201, transfer.text
    assert transfer.json()["status"] == "failed"
    assert transfer.json()["failure_reason"] == "insufficient_funds"


def test_stop_then_start_accounts_and_the_ledger_still_works(platform: Platform) -> None:
    try:
        out = ok("stop", "accounts")
        assert "stopped accounts" in out
        row = next(r for r in json.loads(ok("list", "-o", "json")) if r["app_id"] == "accounts")
        assert row["app_pid"] is None
        assert row["daprd_pid"] is None
        assert row["running"] is False
    finally:
        started = ok("start", "accounts")
    assert "waiting until daprd-accounts is healthy" in started  # progress on the long step
    row = next(r for r in json.loads(ok("list", "-o", "json")) if r["app_id"] == "accounts")
    assert row["running"] is True
    _transfer_completes(platform)
    # The ops console counts the restart (from the logs, since the platform's `up`).
    with httpx.Client(follow_redirects=False, timeout=20.0) as http:
        auth = Authorization()
        code = redirect_params(sign_in(http, auth, *staff_credentials()))["code"]
        token = exchange(http, auth, code).json()["access_token"]
        seen = http.get(
            f"{CONSOLE}/api/apps/accounts", headers={"authorization": f"Bearer {token}"}
        ).json()
    assert seen["processes"]["sidecar"]["restarts"] >= 1
    assert seen["processes"]["app"]["restarts"] >= 1


def test_mtls_and_its_expiry_for_anchors_issuer_and_every_sidecar(platform: Platform) -> None:
    status = json.loads(ok("mtls", "-o", "json"))
    assert {r["app_id"] for r in status} == {a.app_id for a in platform.stack.run_file.apps}
    assert all(r["mtls"] is True for r in status)
    rows = json.loads(ok("mtls", "expiry", "-o", "json"))
    by_what = {r["certificate"]: r for r in rows}
    assert by_what["trust anchors"]["expires_in_seconds"] > 30 * 24 * 3600
    assert by_what["issuer"]["expires_in_seconds"] > 0
    for app in platform.stack.run_file.apps:
        workload = by_what[f"workload {app.app_id}"]
        # Sentry's workload certificates: SPIFFE ids, at most workloadCertTTL (24h).
        assert workload["subject"].startswith("spiffe://"), workload
        assert app.app_id in workload["subject"]
        assert 0 < workload["expires_in_seconds"] <= 24 * 3600 + 900


def _component_names(profile: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "components" / profile).rglob("*.yaml"):
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Component":
                names.add(doc["metadata"]["name"])
    return names


def test_components_lists_the_running_profiles_components(platform: Platform) -> None:
    rows: list[dict[str, Any]] = json.loads(ok("components", "-o", "json"))
    assert {r["name"] for r in rows} == _component_names(platform.stack.profile)
    assert all(r["profile"] == platform.stack.profile for r in rows)
    state = [r for r in rows if r["name"] == "statestore"]
    assert {s for r in state for s in r["scopes"]} >= set(platform.app_ids())
    assert "NAME" in ok("components").splitlines()[0]


def test_configurations_lists_every_configuration(platform: Platform) -> None:
    rows = json.loads(ok("configurations", "-o", "json"))
    used = {app for r in rows for app in r["used_by"]}
    assert used == {a.app_id for a in platform.stack.run_file.apps}
    assert all(r["mtls"] is True and r["acl_default"] == "deny" for r in rows)


def test_dashboard_answers_with_the_consoles_url() -> None:
    out = ok("dashboard").strip().splitlines()
    assert out[-1] == "http://127.0.0.1:8090"
