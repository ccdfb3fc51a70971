"""The ops console's pure rules and its file readers, on the repository's own files."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from kaya787_ops.domain import (
    InvalidInput,
    checked_app_id,
    checked_trace_id,
    checked_transaction_id,
    last_errors,
    pkce_challenge,
    resiliency_for,
    run_file_targets,
    sidecar_summary,
    waterfall,
)
from kaya787_ops.local import LocalDirectory, LocalResources

from tests.support.platform import ROOT


def test_the_run_file_gives_every_sidecar_and_its_ports() -> None:
    doc = yaml.safe_load((ROOT / "dapr" / "dapr.yaml").read_text())
    targets = {t.app_id: t for t in run_file_targets(doc)}
    assert set(targets) == {a["appID"] for a in doc["apps"]}
    assert targets["identity"].http_url == "http://127.0.0.1:3501"
    assert targets["identity"].app_url == "http://127.0.0.1:8101"
    assert targets["gateway"].app_url is None  # a sidecar without an app


@pytest.mark.parametrize("profile", ["local", "kafka"])
def test_local_discovery_points_resources_at_the_running_profile(profile: str) -> None:
    targets = asyncio.run(LocalDirectory(ROOT, profile).targets())
    for target in targets:
        components = [r for r in target.resources if "/components/" in r]
        assert components
        assert all(f"/components/{profile}" in r for r in components)


@pytest.mark.parametrize("profile", ["local", "kafka"])
def test_components_carry_their_scopes(profile: str) -> None:
    components = asyncio.run(LocalResources(ROOT, profile).components())
    stores = {c["scopes"][0]: c["type"] for c in components if c["name"] == "statestore"}
    assert set(stores) == {"identity", "accounts", "transactions", "analytics", "partner"}
    if profile == "kafka":
        assert set(stores.values()) == {"state.postgresql"}
    pubsub = next(c for c in components if c["name"] == "pubsub")
    assert "analytics" in pubsub["scopes"]
    assert pubsub["yaml"].startswith(("#", "apiVersion"))


def test_configurations_summarise_acl_tracing_and_mtls() -> None:
    configs = {c["name"]: c for c in asyncio.run(LocalResources(ROOT, "local").configurations())}
    identity = configs["identity"]
    assert identity["default_action"] == "deny"
    assert identity["mtls"]["enabled"] is True
    assert {"caller": "gateway", "operation": "/oauth2/**", "verbs": ["GET", "POST"]}.items() <= (
        next(r for r in identity["acl"] if r["operation"] == "/oauth2/**").items()
    )
    assert any(c.get("kind") == "Resiliency" for c in configs.values())


def test_resiliency_resolves_the_named_policies() -> None:
    doc = {
        "spec": {
            "policies": {"timeouts": {"fast": "2s"}, "retries": {"twice": {"maxRetries": 2}}},
            "targets": {
                "apps": {"accounts": {"timeout": "fast", "retry": "twice"}},
                "components": {"statestore": {"outbound": {"timeout": "fast"}}},
            },
        }
    }
    applied = resiliency_for(doc, "accounts")
    assert applied["app"]["timeout"] == {"name": "fast", "policy": "2s"}
    assert applied["app"]["retry"]["policy"] == {"maxRetries": 2}
    assert applied["component statestore"]["outbound"]["timeout"]["policy"] == "2s"
    assert resiliency_for({**doc, "scopes": ["identity"]}, "accounts") == {}


def test_sidecar_summary_reads_dapr_118_metadata() -> None:
    summary = sidecar_summary(
        {
            "id": "analytics",
            "runtimeVersion": "1.18.2",
            "enabledFeatures": ["HotReload"],
            "actors": [{"type": "dapr.internal.default.transactions.workflow", "count": 2}],
            "components": [{"name": "pubsub", "type": "pubsub.redis", "version": "v1"}],
            "subscriptions": [
                {
                    "pubsubname": "pubsub",
                    "topic": "accounts.postings.v1",
                    "rules": [{"path": "/events/postings"}],
                    "deadLetterTopic": "accounts.postings.v1.dlq.analytics",
                    "type": "PROGRAMMATIC",
                }
            ],
            "workflows": {"connectedWorkers": 1},
            "actorRuntime": {"runtimeStatus": "RUNNING", "hostReady": True},
        }
    )
    assert summary["runtime_version"] == "1.18.2"
    assert summary["subscriptions"][0]["routes"] == ["/events/postings"]
    assert summary["subscriptions"][0]["dead_letter_topic"].endswith(".dlq.analytics")
    assert summary["workflows"]["connected_workers"] == 1
    assert summary["workflows"]["actor_types"] == ["dapr.internal.default.transactions.workflow"]


def test_a_waterfall_nests_children_under_parents_in_time_order() -> None:
    trace = {
        "traceID": "abc",
        "processes": {"p1": {"serviceName": "gateway"}, "p2": {"serviceName": "accounts"}},
        "spans": [
            {"spanID": "b", "processID": "p2", "operationName": "post", "startTime": 1_500,
             "duration": 200, "references": [{"refType": "CHILD_OF", "spanID": "a"}],
             "tags": [{"key": "error", "value": True}]},
            {"spanID": "a", "processID": "p1", "operationName": "invoke", "startTime": 1_000,
             "duration": 1_000, "references": []},
        ],
    }  # fmt: skip
    rows = waterfall(trace)
    assert [r["span_id"] for r in rows["spans"]] == ["a", "b"]
    assert [r["depth"] for r in rows["spans"]] == [0, 1]
    assert rows["spans"][1]["offset_pct"] == 50.0
    assert rows["spans"][1]["width_pct"] == 20.0
    assert rows["spans"][1]["error"] is True
    assert rows["services"] == ["accounts", "gateway"]


def test_last_errors_keeps_warnings_and_errors_with_their_trace() -> None:
    lines = [
        '{"level":"INFO","message":"fine"}',
        "not json",
        '{"level":"ERROR","message":"boom","trace_id":"t1","timestamp":"x"}',
        '{"level":"warning","msg":"daprd says","time":"y"}',
    ]
    found = last_errors(lines)
    assert [(e["level"], e["message"], e["trace_id"]) for e in found] == [
        ("error", "boom", "t1"),
        ("warning", "daprd says", ""),
    ]


@pytest.mark.parametrize("bad", ["Upper", "-x", "a/b", "x" * 70])
def test_app_ids_are_checked(bad: str) -> None:
    with pytest.raises(InvalidInput):
        checked_app_id(bad)


def test_trace_and_transaction_ids_are_checked() -> None:
    assert checked_trace_id(" ABCDEF0123456789 ") == "abcdef0123456789"
    with pytest.raises(InvalidInput):
        checked_trace_id("../../api")
    assert checked_transaction_id("tx_1-2") == "tx_1-2"
    with pytest.raises(InvalidInput):
        checked_transaction_id('{"a":1}')


def test_the_consoles_pkce_challenge_is_rfc_7636s() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_restarts_count_the_starts_logged_since_up() -> None:
    from datetime import UTC, datetime

    from kaya787_ops.domain import START_MARKERS, restarts_since

    daprd = START_MARKERS["sidecar"]
    lines = [
        '{"msg":"' + daprd + ' -- version 1.18.2","time":"2026-12-03T07:00:00.918976022Z"}',
        '{"msg":"' + daprd + ' -- version 1.18.2","time":"2026-12-03T07:10:00.918976022Z"}',
        '{"msg":"something else","time":"2026-12-03T07:11:00Z"}',
        '{"msg":"' + daprd + ' -- version 1.18.2","time":"2026-12-03T07:12:00.5Z"}',
    ]
    up = datetime(2026, 12, 3, 7, 5, tzinfo=UTC)
    assert restarts_since(lines, daprd, up) == 1  # started at 07:10, restarted at 07:12
    app = START_MARKERS["app"]
    app_lines = ['{"timestamp": "2026-12-03T07:06:00.1+00:00", "message": "' + app + '"}']
    assert restarts_since(app_lines, app, up) == 0
