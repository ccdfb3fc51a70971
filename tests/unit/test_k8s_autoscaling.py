"""Autoscaling: HPAs on the app container's CPU; KEDA on analytics' Kafka consumer lag."""

from __future__ import annotations

import pytest
from kaya787_contracts.identity import TokenRevokedV1

from tests.support.k8s import (
    OVERLAYS,
    Obj,
    Objects,
    app_namespace,
    metadata_values,
    objects,
)

HPA_APPS = ("identity", "accounts", "transactions", "partner")


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def _scaled_object(objs: Objects) -> Obj:
    return objs.one("ScaledObject", "analytics", app_namespace("analytics"))


@pytest.mark.parametrize("app_id", HPA_APPS)
def test_hpa_scales_on_the_app_containers_cpu_only(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    hpa = objs.one("HorizontalPodAutoscaler", app_id, namespace)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", app_id)
    deployment = objs.one("Deployment", app_id, namespace)
    containers = {c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    # ContainerResource of the app container: the injected daprd's CPU is not counted.
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["ContainerResource"]
    resource = metrics[0]["containerResource"]
    assert resource["name"] == "cpu"
    assert resource["container"] == "app"
    assert "app" in containers
    assert resource["target"]["type"] == "Utilization"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The autoscaler owns the replica count; an applied `replicas` would reset it.
    assert "replicas" not in deployment["spec"]


def test_analytics_is_scaled_by_keda_not_by_an_hpa(objs: Objects) -> None:
    namespace = app_namespace("analytics")
    assert objs.of("HorizontalPodAutoscaler", namespace) == []
    scaled = _scaled_object(objs)
    assert scaled["spec"]["scaleTargetRef"]["name"] == "analytics"
    assert "replicas" not in objs.one("Deployment", "analytics", namespace)["spec"]


def _partitions(objs: Objects) -> dict[str, int]:
    return {
        topic["spec"].get("topicName", topic["metadata"]["name"]): topic["spec"]["partitions"]
        for topic in objs.of("KafkaTopic", "kaya787-data")
    }


def test_keda_max_replicas_never_exceed_the_partitions(objs: Objects) -> None:
    scaled = _scaled_object(objs)
    partitions = _partitions(objs)
    topics = [t["metadata"]["topic"] for t in scaled["spec"]["triggers"]]
    assert topics, "no Kafka trigger"
    for topic in topics:
        assert topic in partitions, f"{topic} is not a KafkaTopic"
        assert scaled["spec"]["maxReplicaCount"] <= partitions[topic], topic
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_keda_watches_the_consumer_group_of_the_dapr_component(objs: Objects) -> None:
    namespace = app_namespace("analytics")
    pubsub = objs.one("Component", "pubsub", namespace)
    values = metadata_values(pubsub)
    group = str(values["consumerGroup"]).replace("{appID}", "analytics")
    for trigger in _scaled_object(objs)["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == group == "analytics"
        assert metadata["bootstrapServers"] == values["brokers"]
        assert metadata["allowIdleConsumers"] == "false"
        # Same TLS trust as the sidecar.
        assert metadata["tls"] == "enable"
        auth = objs.one("TriggerAuthentication", trigger["authenticationRef"]["name"], namespace)
        ca = next(ref for ref in auth["spec"]["secretTargetRef"] if ref["parameter"] == "ca")
        assert {"name": ca["name"], "key": ca["key"]} == values["caCert"]


def test_keda_triggers_are_exactly_the_topics_analytics_subscribes_to(objs: Objects) -> None:
    values = metadata_values(objs.one("Component", "pubsub", app_namespace("analytics")))
    # The revocation feed is not work to scale on: every replica keeps the whole list.
    subscribed = [
        topic
        for topic in str(values["subscriptionScopes"]).split("=", 1)[1].split(",")
        if topic and ".dlq." not in topic and topic != TokenRevokedV1.TOPIC
    ]
    topics = [t["metadata"]["topic"] for t in _scaled_object(objs)["spec"]["triggers"]]
    assert sorted(topics) == sorted(subscribed)
