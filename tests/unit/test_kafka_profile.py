"""The `kafka` profile's components mirror the local ones: same files, names, scopes, topics
and outboxes, only the backends differ (Kafka, PostgreSQL v2), and every secret they refer to
is one the bootstrap generates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaya787_launcher import brokers, devsecrets
from kaya787_launcher.paths import Layout

from tests.support.platform import ROOT

LOCAL = ROOT / "components" / "local"
KAFKA = ROOT / "components" / "kafka"
APP_IDS = ("identity", "accounts", "transactions", "analytics")
OUTBOX_KEYS = ("outboxPublishPubsub", "outboxPublishTopic", "outboxPubsub")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _meta(component: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m.get("value", m.get("secretKeyRef")) for m in component["spec"]["metadata"]}


def _duration_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text)
    assert match, f"not a Go duration in ms or s: {text!r}"
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def test_the_same_component_files_exist_in_both_profiles() -> None:
    assert _files(KAFKA) == _files(LOCAL)
    assert {f"state/{app}/statestore.yaml" for app in APP_IDS} <= set(_files(KAFKA))


@pytest.mark.parametrize("relative", _files(LOCAL))
def test_each_component_keeps_its_name_scopes_and_secret_store(relative: str) -> None:
    local, ours = _load(LOCAL / relative), _load(KAFKA / relative)
    assert ours["kind"] == local["kind"] == "Component"
    assert ours["metadata"]["name"] == local["metadata"]["name"]
    assert ours["scopes"] == local["scopes"]
    assert ours.get("auth") == local.get("auth")


def test_pubsub_is_kafka_on_the_launchers_broker() -> None:
    pubsub = _load(KAFKA / "pubsub.yaml")
    meta = _meta(pubsub)
    assert (pubsub["spec"]["type"], pubsub["spec"]["version"]) == ("pubsub.kafka", "v1")
    assert meta["brokers"] == f"127.0.0.1:{brokers.KAFKA_PORT}"
    assert meta["authType"] == "none"
    # One group per app id: each subscribing app gets every event once.
    assert meta["consumerGroup"] == "{appID}"
    assert meta["initialOffset"] == "oldest"
    # A failed delivery must be retried, not skipped by the next offset commit.
    assert meta["consumeRetryEnabled"] == "true"


def test_pubsub_group_timeouts_are_short_and_valid() -> None:
    meta = _meta(_load(KAFKA / "pubsub.yaml"))
    session = _duration_seconds(meta["sessionTimeout"])
    heartbeat = _duration_seconds(meta["heartbeatInterval"])
    # Below the 10 s default (a restarted sidecar's group settles sooner), not below the
    # broker's 6 s minimum, with the heartbeat at most a third of the session.
    assert 6 <= session < 10
    assert heartbeat * 3 <= session


def test_pubsub_topic_scopes_are_the_local_ones() -> None:
    local = _meta(_load(LOCAL / "pubsub.yaml"))
    ours = _meta(_load(KAFKA / "pubsub.yaml"))
    for key in ("publishingScopes", "subscriptionScopes"):
        assert ours[key] == local[key], key


@pytest.mark.parametrize("app_id", APP_IDS)
def test_state_store_is_postgresql_v2_with_the_local_outbox(app_id: str) -> None:
    relative = Path("state") / app_id / "statestore.yaml"
    local, ours = _meta(_load(LOCAL / relative)), _meta(_load(KAFKA / relative))
    store = _load(KAFKA / relative)
    assert (store["spec"]["type"], store["spec"]["version"]) == ("state.postgresql", "v2")
    assert {k: ours.get(k) for k in OUTBOX_KEYS} == {k: local.get(k) for k in OUTBOX_KEYS}
    assert ours.get("actorStateStore") == local.get("actorStateStore")
    assert ours["connectionString"] == {
        "name": "postgres-connection-string",
        "key": "postgres-connection-string",
    }


def test_each_app_has_its_own_tables() -> None:
    metas = [_meta(_load(KAFKA / "state" / app / "statestore.yaml")) for app in APP_IDS]
    prefixes = [m["tablePrefix"] for m in metas]
    metadata_tables = [m["metadataTableName"] for m in metas]
    assert len(set(prefixes)) == len(APP_IDS)
    assert len(set(metadata_tables)) == len(APP_IDS)
    # Only plain identifiers: the component splices them into SQL.
    assert all(re.fullmatch(r"[a-z_]+", name) for name in prefixes + metadata_tables)


def test_only_transactions_hosts_actor_state() -> None:
    flagged = [
        app
        for app in APP_IDS
        if _meta(_load(KAFKA / "state" / app / "statestore.yaml")).get("actorStateStore") == "true"
    ]
    assert flagged == ["transactions"]


def test_secret_store_is_the_local_one() -> None:
    assert _load(KAFKA / "secretstore.yaml")["spec"] == _load(LOCAL / "secretstore.yaml")["spec"]


def _secret_refs(folder: Path) -> set[str]:
    refs = set()
    for path in folder.rglob("*.yaml"):
        for value in _meta(_load(path)).values():
            if isinstance(value, dict):
                assert value["key"] == value["name"], path  # the file store is flat
                refs.add(value["name"])
    return refs


def test_every_secret_reference_is_generated(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    generated = devsecrets.ensure_secret_store(layout)
    refs = _secret_refs(KAFKA)
    assert "postgres-connection-string" in refs
    assert refs <= set(generated), refs - set(generated)


def test_the_connection_string_reaches_the_launchers_postgres(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    values = devsecrets.ensure_secret_store(layout)
    fields = dict(item.split("=", 1) for item in values["postgres-connection-string"].split())
    assert fields["host"] == "127.0.0.1"
    assert fields["port"] == str(brokers.POSTGRES_PORT)
    assert fields["user"] == brokers.POSTGRES_USER
    assert fields["dbname"] == brokers.POSTGRES_DB
    assert fields["password"] == values["postgres-password"]


def test_the_connection_string_follows_a_new_password(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    first = devsecrets.ensure_secret_store(layout)
    path = layout.secrets / devsecrets.SECRETS_FILE
    stored = json.loads(path.read_text())
    del stored["postgres-password"]
    path.write_text(json.dumps(stored))
    again = devsecrets.ensure_secret_store(layout)
    assert again["postgres-password"] != first["postgres-password"]
    assert f"password={again['postgres-password']} " in again["postgres-connection-string"]
    assert path.stat().st_mode & 0o077 == 0
