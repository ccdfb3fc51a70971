"""Kafka (Strimzi) and PostgreSQL (CloudNativePG): topics, listener, replication, databases."""

from __future__ import annotations

import re

import pytest
from kaya787_analytics.events import DOMAIN_TOPICS

from tests.support.k8s import (
    APP_IDS,
    OVERLAYS,
    PUBSUB_APP_IDS,
    Obj,
    Objects,
    app_namespace,
    metadata_values,
    objects,
)

DATA = "kaya787-data"
TOPIC_NAME = re.compile(r"^[a-z]+\.[a-z]+(-[a-z]+)*\.v[0-9]+$")
DLQ_NAME = re.compile(r"^(?P<topic>.+)\.dlq\.(?P<app>[a-z]+)$")


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def _topics(objs: Objects) -> dict[str, Obj]:
    return {
        t["spec"].get("topicName", t["metadata"]["name"]): t for t in objs.of("KafkaTopic", DATA)
    }


def _brokers(objs: Objects) -> int:
    return sum(
        pool["spec"]["replicas"]
        for pool in objs.of("KafkaNodePool", DATA)
        if "broker" in pool["spec"]["roles"]
    )


def test_topics_follow_the_naming_rule(objs: Objects) -> None:
    for name, topic in _topics(objs).items():
        dlq = DLQ_NAME.match(name)
        if dlq:
            assert TOPIC_NAME.match(dlq["topic"]), name
            assert dlq["app"] in APP_IDS, name
        elif name.endswith("outbox"):
            assert topic["metadata"]["labels"]["kaya787.io/outbox-of"] in APP_IDS
        else:
            assert TOPIC_NAME.match(name), name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "kaya787"


def test_every_domain_topic_has_analytics_dead_letter_topic(objs: Objects) -> None:
    topics = set(_topics(objs))
    assert topics >= set(DOMAIN_TOPICS)
    assert {f"{t}.dlq.analytics" for t in DOMAIN_TOPICS} <= topics


def test_every_topic_an_app_may_use_exists(objs: Objects) -> None:
    """Automatic topic creation is off, so a scoped topic without a KafkaTopic would fail."""
    kafka = objs.one("Kafka", "kaya787", DATA)
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    topics = set(_topics(objs))
    for app_id in PUBSUB_APP_IDS:
        values = metadata_values(objs.one("Component", "pubsub", app_namespace(app_id)))
        for key in ("publishingScopes", "subscriptionScopes"):
            scoped = str(values[key]).split("=", 1)[1].split(",")
            missing = {t for t in scoped if t} - topics
            assert missing == set(), (app_id, key)


def test_replication_fits_the_brokers(objs: Objects) -> None:
    brokers = _brokers(objs)
    config = objs.one("Kafka", "kaya787", DATA)["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] <= brokers
    assert config["offsets.topic.replication.factor"] <= brokers
    assert config["min.insync.replicas"] <= config["default.replication.factor"]
    for name, topic in _topics(objs).items():
        replicas = topic["spec"]["replicas"]
        assert replicas <= brokers, name
        assert int(topic["spec"]["config"]["min.insync.replicas"]) <= replicas, name


def test_prod_tolerates_a_broker_loss_and_dev_runs_on_one_node() -> None:
    prod, dev = objects("prod"), objects("dev")
    assert _brokers(prod) >= 3
    assert all(t["spec"]["replicas"] >= 3 for t in _topics(prod).values())
    assert all(int(t["spec"]["config"]["min.insync.replicas"]) >= 2 for t in _topics(prod).values())
    controllers = [p for p in prod.of("KafkaNodePool", DATA) if "controller" in p["spec"]["roles"]]
    assert sum(p["spec"]["replicas"] for p in controllers) % 2 == 1  # a KRaft quorum
    pools = dev.of("KafkaNodePool", DATA)
    assert [(p["spec"]["replicas"], sorted(p["spec"]["roles"])) for p in pools] == [
        (1, ["broker", "controller"])
    ]


def test_the_tls_listener_is_what_the_apps_connect_to(objs: Objects) -> None:
    kafka = objs.one("Kafka", "kaya787", DATA)
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert [(ln["port"], ln["tls"]) for ln in listeners] == [(9093, True)]
    cert_ref = listeners[0]["configuration"]["brokerCertChainAndKey"]
    certificate = objs.one("Certificate", cert_ref["secretName"], DATA)
    names = certificate["spec"]["dnsNames"]
    for app_id in PUBSUB_APP_IDS:
        brokers = str(
            metadata_values(objs.one("Component", "pubsub", app_namespace(app_id)))["brokers"]
        )
        host, _, port = brokers.partition(":")
        assert int(port) == listeners[0]["port"]
        assert host in names, host
        assert host.startswith(f"{kafka['metadata']['name']}-kafka-bootstrap.{DATA}.")
    assert f"*.kaya787-kafka-brokers.{DATA}.svc" in names
    assert certificate["spec"]["issuerRef"]["name"] == "kaya787-ca"


def test_the_ca_is_the_same_for_brokers_and_apps(objs: Objects) -> None:
    issuer = objs.one("ClusterIssuer", "kaya787-ca")
    ca = objs.one("Certificate", issuer["spec"]["ca"]["secretName"], "cert-manager")
    assert ca["spec"]["isCA"] is True
    for app_id in PUBSUB_APP_IDS:
        trust = objs.one("Certificate", "kafka-trust", app_namespace(app_id))
        assert trust["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "kaya787-ca"}
    # An app without pub/sub gets no certificate it would never use.
    for app_id in set(APP_IDS) - set(PUBSUB_APP_IDS):
        assert objs.of("Certificate", app_namespace(app_id)) == [], app_id


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_app_owns_its_postgresql(objs: Objects, app_id: str) -> None:
    cluster = objs.one("Cluster", f"{app_id}-pg", app_namespace(app_id))
    spec = cluster["spec"]
    assert spec["enableSuperuserAccess"] is False
    assert spec["bootstrap"]["initdb"]["database"] == app_id
    assert ":" in spec["imageName"]
    assert not spec["imageName"].endswith(":latest")


def test_prod_postgresql_is_replicated_and_dev_is_single() -> None:
    for app_id in APP_IDS:
        namespace = app_namespace(app_id)
        assert objects("prod").one("Cluster", f"{app_id}-pg", namespace)["spec"]["instances"] >= 3
        assert objects("dev").one("Cluster", f"{app_id}-pg", namespace)["spec"]["instances"] == 1
