"""Metrics, dashboards, alerts, traces and logs shipped with the prod overlay."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.k8s import APP_IDS, K8S, Obj, Objects, app_namespace, load_yaml, objects
from tests.support.platform import ROOT

MONITORING = "monitoring"
DASHBOARDS = K8S / "observability" / "dashboards"
RULES_FILE = ROOT / "observability" / "prometheus" / "rules.yml"
K8S_ONLY_GROUP = "kaya787.k8s."


@pytest.fixture(scope="module")
def prod() -> Objects:
    return objects("prod")


def _release_label() -> dict[str, str]:
    spec = load_yaml(K8S / "helm" / "kube-prometheus-stack.yaml")["prometheus"]["prometheusSpec"]
    labels: dict[str, str] = spec["serviceMonitorSelector"]["matchLabels"]
    return labels


def test_prometheus_selects_every_monitor_and_rule(prod: Objects) -> None:
    wanted = _release_label()
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        found = prod.of(kind)
        assert found, kind
        for obj in found:
            assert wanted.items() <= obj["metadata"]["labels"].items(), obj["metadata"]["name"]


def test_the_apps_own_metrics_are_scraped_as_locally(prod: Objects) -> None:
    monitor = prod.one("ServiceMonitor", "kaya787-apps", MONITORING)
    (endpoint,) = [e for e in monitor["spec"]["endpoints"] if e["port"] == "app-metrics"]
    assert endpoint["path"] == "/metrics"
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert relabel["job"]["replacement"] == "kaya787-app"  # the local job name
    assert "service" in relabel


def test_the_apps_sidecar_metrics_are_scraped(prod: Objects) -> None:
    monitor = prod.one("ServiceMonitor", "kaya787-apps", MONITORING)
    assert set(monitor["spec"]["namespaceSelector"]["matchNames"]) == {
        app_namespace(a) for a in APP_IDS
    }
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    for app_id in APP_IDS:
        service = prod.one("Service", app_id, app_namespace(app_id))
        assert ports <= {p["name"] for p in service["spec"]["ports"]}, app_id
        selector = monitor["spec"]["selector"]["matchExpressions"][0]
        assert service["metadata"]["labels"][selector["key"]] in selector["values"]


def _alerts(prod: Objects) -> list[Obj]:
    rule = prod.one("PrometheusRule", "kaya787", MONITORING)
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def test_the_rule_groups_are_the_local_rules_file_plus_k8s_only_ones(prod: Objects) -> None:
    """observability/prometheus/rules.yml is the single source of the shared groups."""
    groups = prod.one("PrometheusRule", "kaya787", MONITORING)["spec"]["groups"]
    local = load_yaml(RULES_FILE)["groups"]
    assert groups[: len(local)] == local
    extra = groups[len(local) :]
    assert extra
    assert all(g["name"].startswith(K8S_ONLY_GROUP) for g in extra)


def _relabeled(endpoint: Obj) -> dict[str, str]:
    """Static target labels an endpoint's relabelings set (target label -> replacement)."""
    return {
        r["targetLabel"]: r.get("replacement", "$1")
        for r in endpoint.get("relabelings", [])
        if "targetLabel" in r
    }


def test_sidecars_get_the_job_and_app_id_labels_the_rules_select_on(prod: Objects) -> None:
    apps = prod.one("ServiceMonitor", "kaya787-apps", MONITORING)["spec"]["endpoints"]
    gateway = prod.one("PodMonitor", "kaya787-gateway", MONITORING)["spec"]["podMetricsEndpoints"]
    sidecars = [e for e in [*apps, *gateway] if e["port"] == "dapr-metrics"]
    assert len(sidecars) == 2
    for endpoint in sidecars:
        labels = _relabeled(endpoint)
        assert labels["job"] == "dapr-sidecar"
        assert "app_id" in labels
        assert endpoint["honorLabels"] is True  # Dapr's own app_id wins over a renamed copy
    (from_service,) = [r for r in apps[0]["relabelings"] if r["targetLabel"] == "app_id"]
    assert from_service["sourceLabels"] == ["__meta_kubernetes_service_label_kaya787_io_app"]
    assert _relabeled(gateway[0])["app_id"] == "gateway"


def test_control_plane_jobs_are_those_the_target_down_alert_watches(prod: Objects) -> None:
    monitor = prod.one("PodMonitor", "kaya787-dapr-control-plane", MONITORING)
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (relabel,) = endpoint["relabelings"]
    pattern = re.compile(relabel["regex"])
    jobs = set()
    for app in monitor["spec"]["selector"]["matchExpressions"][0]["values"]:
        match = pattern.fullmatch(app)
        assert match, app
        jobs.add(match.expand(relabel["replacement"].replace("$1", r"\1")))
    assert jobs == {"dapr-sentry", "dapr-placement", "dapr-scheduler"}
    (down,) = [a for a in _alerts(prod) if a["alert"] == "Kaya787TargetDown"]
    watched = re.search(r'job=~"([^"]+)"', down["expr"])
    assert watched
    assert jobs <= set(watched.group(1).split("|"))


def test_alerts_are_actionable(prod: Objects) -> None:
    alerts = _alerts(prod)
    names = {a["alert"] for a in alerts}
    assert {"Kaya787SidecarDown", "Kaya787HighServerErrorRate", "Kaya787ConsumerLagHigh"} <= names
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        expr = str(alert["expr"])
        assert expr.count("(") == expr.count(")"), alert["alert"]


def test_the_lag_alert_watches_the_consumer_group_keda_scales_on(prod: Objects) -> None:
    scaled = prod.one("ScaledObject", "analytics", app_namespace("analytics"))
    group = scaled["spec"]["triggers"][0]["metadata"]["consumerGroup"]
    (lag,) = [a for a in _alerts(prod) if a["alert"] == "Kaya787ConsumerLagHigh"]
    assert f'consumergroup="{group}"' in lag["expr"]


def test_dashboards_are_grafana_configmaps_with_queries(prod: Objects) -> None:
    (config_map,) = [
        cm
        for cm in prod.of("ConfigMap", MONITORING)
        if cm["metadata"]["name"] == "kaya787-dashboards"
    ]
    grafana = load_yaml(K8S / "helm" / "kube-prometheus-stack.yaml")["grafana"]["sidecar"]
    label = grafana["dashboards"]["label"]
    assert config_map["metadata"]["labels"][label] == grafana["dashboards"]["labelValue"]
    # The ConfigMap carries exactly the dashboard files: one source, no stale copies.
    assert set(config_map["data"]) == {p.name for p in DASHBOARDS.glob("*.json")}
    uids = set()
    for name, text in config_map["data"].items():
        dashboard = json.loads(text)
        uids.add(dashboard["uid"])
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        assert "datasource" in variables, name
        assert dashboard["panels"], name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (name, panel["title"])
            assert panel["targets"], panel["title"]
            assert all(t["expr"] for t in panel["targets"]), panel["title"]
            assert all(
                re.search(r"kaya787_|dapr_|kafka_|kube_|process_|up\b", t["expr"])
                for t in panel["targets"]
            )
    assert len(uids) == len(config_map["data"])


def test_logs_are_shipped_from_the_kaya787_namespaces(prod: Objects) -> None:
    beat = prod.one("Beat", "filebeat", "observability")
    assert beat["spec"]["type"] == "filebeat"
    prod.one("Elasticsearch", beat["spec"]["elasticsearchRef"]["name"], "observability")
    prod.one("Kibana", beat["spec"]["kibanaRef"]["name"], "observability")
    (provider,) = beat["spec"]["config"]["filebeat.autodiscover"]["providers"]
    (template,) = provider["templates"]
    assert template["condition"]["contains"]["kubernetes.namespace"] == "kaya787-"
    parsers = template["config"][0]["parsers"]
    # Our logs are one JSON object per line: fields like trace_id land at the top level.
    assert any("ndjson" in p and p["ndjson"]["target"] == "" for p in parsers)
    account = beat["spec"]["daemonSet"]["podTemplate"]["spec"]["serviceAccountName"]
    prod.one("ServiceAccount", account, "observability")
    bindings = [b for b in prod.of("ClusterRoleBinding") if b["subjects"][0]["name"] == account]
    assert bindings


def test_versions_of_the_elastic_stack_agree(prod: Objects) -> None:
    versions = {
        obj["spec"]["version"]
        for kind in ("Elasticsearch", "Kibana", "Beat")
        for obj in prod.of(kind, "observability")
    }
    assert len(versions) == 1
