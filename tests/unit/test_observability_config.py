"""Jaeger's and Prometheus' local config, the alert rules and the Grafana dashboards.

promtool (Debian's prometheus package, a bootstrap dependency) checks the rules, the
rendered scrape config and the syntax of every dashboard expression offline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaya787_launcher import observability as obs
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.topology import LOOPBACK, ControlPlanePorts, load_run_file

from tests.support.platform import ROOT
from tests.support.promql import DASHBOARDS, K8S_ONLY_TAG, all_queries

RULES = ROOT / obs.RULES_FILE
JAEGER_CONFIG = ROOT / obs.JAEGER_CONFIG
RUN_FILE = load_run_file(ROOT / "dapr" / "dapr.yaml")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: run `make bootstrap` (Debian package prometheus)")
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


# ------------------------------------------------------------------------ alert rules
def test_promtool_accepts_the_rules_file() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_rejects_a_rule_that_does_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yml"
    bad.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n"
        "        expr: sum by (service (rate(x[5m])) > 1\n"
    )
    assert promtool("check", "rules", bad).returncode != 0


def test_the_slos_each_have_an_alert() -> None:
    alerts = {
        r["alert"]: r
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    wanted = {
        "Kaya787HighServerErrorRate": "kaya787_http_requests_total",
        "Kaya787HighLatencyP99": "kaya787_http_request_duration_seconds_bucket",
        "Kaya787WorkflowsStuck": "kaya787_workflows_in_flight",
        "Kaya787DeadLetterGrowth": "kaya787_analytics_dead_letters_total",
        "Kaya787SidecarDown": 'up{job="dapr-sidecar"}',
        "Kaya787EventProcessingDelay": "kaya787_event_processing_delay_seconds_bucket",
    }
    for name, metric in wanted.items():
        assert metric in alerts[name]["expr"], name
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert alert["annotations"]["summary"], name


# ------------------------------------------------------------------- Prometheus config
@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A repository root with the real rules file and run file, and an empty var/."""
    (tmp_path / "observability").symlink_to(ROOT / "observability")
    (tmp_path / "dapr").symlink_to(ROOT / "dapr")
    return Layout(tmp_path)


def _rendered(layout: Layout) -> tuple[Path, dict[str, Any]]:
    managed = obs.prometheus(layout, obs.scrape_targets(RUN_FILE, ControlPlanePorts()))
    assert managed.prepare is not None
    managed.prepare()  # what `up` runs before the start
    path = layout.run / "prometheus" / "prometheus.yml"
    return path, yaml.safe_load(path.read_text())


def _targets(config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                yield job["job_name"], target, static["labels"]


def test_promtool_accepts_the_rendered_config(layout: Layout) -> None:
    path, config = _rendered(layout)
    assert config["rule_files"] == [str(layout.root / obs.RULES_FILE)]
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_every_app_sidecar_and_control_plane_process_is_a_target(layout: Layout) -> None:
    _, config = _rendered(layout)
    found = {(job, target, labels["__metrics_path__"]) for job, target, labels in _targets(config)}
    ports = ControlPlanePorts()
    apps = [a for a in RUN_FILE.apps if a.has_app]
    expected = {
        *((obs.APP_JOB, f"{LOOPBACK}:{a.app_port}", "/metrics") for a in apps),
        *((obs.SIDECAR_JOB, f"{LOOPBACK}:{a.metrics_port}", "/") for a in RUN_FILE.apps),
        ("dapr-sentry", f"{LOOPBACK}:{ports.sentry_metrics}", "/"),
        ("dapr-placement", f"{LOOPBACK}:{ports.placement_metrics}", "/"),
        ("dapr-scheduler", f"{LOOPBACK}:{ports.scheduler_metrics}", "/"),
        ("jaeger", f"{LOOPBACK}:{obs.JAEGER_METRICS_PORT}", "/metrics"),
        ("prometheus", f"{LOOPBACK}:{obs.PROMETHEUS_PORT}", "/metrics"),
    }
    assert found == expected
    # The labels the rules and dashboards group by name each app's and sidecar's target.
    named = {
        (job, labels.get("service") or labels.get("app_id")) for job, _, labels in _targets(config)
    }
    assert {(obs.APP_JOB, a.app_id) for a in apps} <= named
    assert {(obs.SIDECAR_JOB, a.app_id) for a in RUN_FILE.apps} <= named


def test_prometheus_listens_and_scrapes_on_loopback_only(layout: Layout) -> None:
    managed = obs.prometheus(layout, obs.scrape_targets(RUN_FILE, ControlPlanePorts()))
    _, config = _rendered(layout)
    assert all(target.startswith(f"{LOOPBACK}:") for _, target, _ in _targets(config))
    assert f"--web.listen-address={LOOPBACK}:{obs.PROMETHEUS_PORT}" in managed.spec.argv
    assert f"--storage.tsdb.path={layout.data / 'prometheus'}" in managed.spec.argv
    assert managed.url == f"http://{LOOPBACK}:{obs.PROMETHEUS_PORT}"
    assert config["global"]["scrape_interval"] == "5s"


def test_prometheus_needs_the_rules_file(tmp_path: Path) -> None:
    managed = obs.prometheus(Layout(tmp_path), [])  # describing it needs nothing
    assert managed.prepare is not None
    with pytest.raises(LauncherError, match="rules file"):
        managed.prepare()


@pytest.mark.parametrize(
    ("job", "port", "path", "labels"),
    [
        ("bad job", 80, "/metrics", {}),
        ("ok", 0, "/metrics", {}),
        ("ok", 70000, "/metrics", {}),
        ("ok", 80, "metrics", {}),
        ("ok", 80, "/metrics", {"bad-label": "x"}),
        ("ok", 80, "/metrics", {"__address__": "10.0.0.1:80"}),
    ],
)
def test_scrape_targets_refuse_bad_input(
    job: str, port: int, path: str, labels: dict[str, str]
) -> None:
    with pytest.raises(LauncherError):
        obs.ScrapeTarget(job, port, path, labels)


# ------------------------------------------------------------------------------ Jaeger
def _endpoints(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every listener setting: `endpoint` values, and the Prometheus reader's host."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "endpoint" or (key == "host" and "prometheus" in where):
                yield path, value
            else:
                yield from _endpoints(value, path)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _endpoints(item, f"{where}[{index}]")


# Settings that start a listener: an empty one means the component's default address,
# which for the collector is localhost or all interfaces.
_SERVERS = (
    "receivers.otlp.protocols.grpc",
    "receivers.otlp.protocols.http",
    "extensions.jaeger_query.http",
    "extensions.jaeger_query.grpc",
    "extensions.healthcheckv2.http",
)


def loopback_problems(config: dict[str, Any]) -> list[str]:
    problems = [
        f"{path}: {value!r}"
        for path, value in _endpoints(config)
        if not str(value).startswith(f"{LOOPBACK}:") and value != LOOPBACK
    ]
    for dotted in _SERVERS:
        node: Any = config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not node.get("endpoint"):
            problems.append(f"{dotted}: no explicit endpoint")
    extensions = config["service"]["extensions"]
    problems += [
        f"extension {e} is not configured" for e in extensions if e not in config["extensions"]
    ]
    return problems


def test_jaeger_binds_loopback_only() -> None:
    config = yaml.safe_load(JAEGER_CONFIG.read_text())
    assert loopback_problems(config) == []
    assert "0.0.0.0" not in yaml.safe_dump(config)


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("receivers.otlp.protocols.grpc", {"endpoint": "0.0.0.0:4317"}),
        ("receivers.otlp.protocols.http", None),
        ("extensions.jaeger_query.http", {"endpoint": ":16686"}),
        ("extensions.healthcheckv2.http", {"endpoint": "localhost:13133"}),
    ],
)
def test_the_loopback_check_catches_an_open_listener(dotted: str, value: Any) -> None:
    config = yaml.safe_load(JAEGER_CONFIG.read_text())
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    assert loopback_problems(config)


def test_jaeger_ports_are_the_launchers() -> None:
    config = yaml.safe_load(JAEGER_CONFIG.read_text())
    ports = {
        int(str(value).rsplit(":", 1)[1]) for path, value in _endpoints(config) if ":" in str(value)
    }
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    ports.add(reader["prometheus"]["port"])
    assert ports == {
        obs.JAEGER_OTLP_GRPC_PORT,
        obs.JAEGER_OTLP_HTTP_PORT,
        obs.JAEGER_QUERY_PORT,
        obs.JAEGER_QUERY_GRPC_PORT,
        obs.JAEGER_HEALTH_PORT,
        obs.JAEGER_METRICS_PORT,
    }
    # Memory storage, read by the query API the tests use.
    backend = config["extensions"]["jaeger_query"]["storage"]["traces"]
    assert "memory" in config["extensions"]["jaeger_storage"]["backends"][backend]


def jaeger_validate(config: Path) -> subprocess.CompletedProcess[str]:
    binary = obs.jaeger_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run tools/build-jaeger.sh (or `make bootstrap`)")
    return subprocess.run(
        [str(binary), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_jaeger_accepts_its_config() -> None:
    result = jaeger_validate(JAEGER_CONFIG)
    assert result.returncode == 0, result.stderr


def test_jaeger_rejects_a_misspelt_setting(tmp_path: Path) -> None:
    """So a setting that turns a default off (enable_tracing) cannot be silently ignored."""
    config = yaml.safe_load(JAEGER_CONFIG.read_text())
    assert config["extensions"]["jaeger_query"].pop("enable_tracing") is False
    config["extensions"]["jaeger_query"]["enable_tracin"] = False
    path = tmp_path / "jaeger.yaml"
    path.write_text(yaml.safe_dump(config))
    result = jaeger_validate(path)
    assert result.returncode != 0
    assert "enable_tracin" in result.stderr


def test_jaeger_needs_its_binary(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAYA787_TOOLS", str(tmp_path / "empty"))
    managed = obs.jaeger(layout)  # status and down work without a build
    assert managed.prepare is not None
    with pytest.raises(LauncherError, match="make bootstrap"):
        managed.prepare()


def test_jaeger_runs_the_repository_config(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "jaeger").write_text("#!/bin/sh\n")
    monkeypatch.setenv("KAYA787_TOOLS", str(tools))
    managed = obs.jaeger(layout)
    assert list(managed.spec.argv) == [
        str(tools / "jaeger"),
        "--config",
        str(layout.root / obs.JAEGER_CONFIG),
    ]
    assert managed.url == f"http://{LOOPBACK}:{obs.JAEGER_QUERY_PORT}"
    assert set(managed.ports.values()) >= {obs.JAEGER_OTLP_GRPC_PORT, obs.JAEGER_QUERY_PORT}


# -------------------------------------------------------------------------- dashboards
def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def test_dashboards_are_grafana_json_of_the_four_kinds() -> None:
    dashboards = _dashboards()
    kinds = {"overview", "red", "dapr", "business"}
    tags = [t for d in dashboards.values() for t in d["tags"]]
    assert kinds <= set(tags)
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for name, dashboard in dashboards.items():
        assert dashboard["title"].startswith("KAYA787 / "), name
        assert isinstance(dashboard["schemaVersion"], int), name
        assert "kaya787" in dashboard["tags"], name
        panels = list(_panels(dashboard["panels"]))
        assert panels, name
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), name
        for panel in panels:
            where = (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] >= 0, where
            assert grid["x"] + grid["w"] <= 24, where
            assert grid["h"] > 0, where
            assert panel["type"] in {"timeseries", "stat", "gauge", "table", "bargauge"}, where
            assert panel["datasource"]["uid"] == "${datasource}", where
            refs = [t["refId"] for t in panel["targets"]]
            assert refs, where
            assert len(refs) == len(set(refs)), where
            assert all(t["expr"].strip() for t in panel["targets"]), where


def test_every_dashboard_is_checked_locally_unless_marked_k8s_only() -> None:
    checked = {q.source.split(":")[0] for q in all_queries() if q.source.endswith("]")}
    for name, dashboard in _dashboards().items():
        if K8S_ONLY_TAG in dashboard["tags"]:
            assert name not in checked
            assert "only" in dashboard["description"], name  # says why
        else:
            assert name in checked, name


def test_every_expression_parses(tmp_path: Path) -> None:
    """All rule and dashboard expressions (de-templated), as recording rules for promtool."""
    queries = all_queries()
    expressions = [expr for q in queries for expr in (q.expr, q.must_return)]
    rules = [{"record": f"kaya787:check:{i}", "expr": e} for i, e in enumerate(expressions)]
    path = tmp_path / "check.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
