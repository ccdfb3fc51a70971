"""tests/support/promql.py: what the integration test will query, and what must return series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import (
    K8S_ONLY_TAG,
    dashboard_queries,
    dashboard_variables,
    detemplate,
    rule_queries,
    series_part,
)


@pytest.mark.parametrize(
    ("expr", "part"),
    [
        ('up{job="dapr-sidecar"} == 0', 'up{job="dapr-sidecar"}'),
        ("rate(x[5m]) > bool 1", "rate(x[5m])"),
        # operators inside matchers, strings and grouping are not the comparison
        (
            'sum by (a) (rate(x{s!="200",t=~"a|b"}[5m])) >= 3',
            'sum by (a) (rate(x{s!="200",t=~"a|b"}[5m]))',
        ),
        ('x{path="/a>b"} < 1', 'x{path="/a>b"}'),
        ('x{v="say \\"a\\" > b"} != 2', 'x{v="say \\"a\\" > b"}'),
        # the loosest operator decides: and/unless bind looser than comparisons
        ("a > 0 unless on (s, w) b > 0", "a"),
        ("a > 1 and b", "a"),
        # `or` keeps both sides: either may rightly be empty
        ("a or b", "a or b"),
        ("(a or b * 0) / c > 0.01", "(a or b * 0) / c"),
        ("(\n  a\n    or b * 0\n)\n  > 0", "a\n    or b * 0"),
        # names that merely contain or/and/unless are not operators
        (
            "sum by (operation) (sandbox_order_total) > 1",
            "sum by (operation) (sandbox_order_total)",
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) > 1",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        ),
        # no threshold: the whole expression
        ("sum by (job) (up)", "sum by (job) (up)"),
        ("(a) / (b)", "(a) / (b)"),
    ],
)
def test_series_part(expr: str, part: str) -> None:
    assert series_part(expr) == part


def test_detemplate_replaces_grafana_variables() -> None:
    expr = 'rate(x{s=~"$service",a=~"${app}",b="${app:regex}",c="[[app]]"}[$__rate_interval])'
    assert detemplate(expr, {"service": ".+", "app": "gw"}) == (
        'rate(x{s=~".+",a=~"gw",b="gw",c="gw"}[1m])'
    )
    assert detemplate("increase(x[$__range])", {}) == "increase(x[1h])"


def test_detemplate_refuses_an_unknown_variable() -> None:
    with pytest.raises(ValueError, match=r"\$servce"):
        detemplate('x{s=~"$servce"}', {"service": ".+"})


def _dashboard(
    tags: list[str], variables: list[dict[str, Any]], exprs: list[str]
) -> dict[str, Any]:
    return {
        "uid": "t",
        "tags": tags,
        "templating": {"list": [{"name": "datasource", "type": "datasource"}, *variables]},
        "panels": [
            {"title": "p1", "targets": [{"refId": "A", "expr": exprs[0]}]},
            {
                "title": "row",
                "type": "row",
                "panels": [
                    {"title": "p2", "targets": [{"refId": "B", "expr": e} for e in exprs[1:]]}
                ],
            },
        ],
    }


def test_dashboard_variables_take_all_or_the_current_value() -> None:
    board = _dashboard(
        [],
        [
            {"name": "service", "type": "query", "includeAll": True, "allValue": ".+"},
            {"name": "app", "type": "query", "includeAll": True},
            {"name": "quantile", "type": "custom", "current": {"value": ["0.99", "0.5"]}},
        ],
        ["x"],
    )
    assert dashboard_variables(board) == {
        "datasource": "prometheus",
        "service": ".+",
        "app": ".*",
        "quantile": "0.99",
    }


def test_a_variable_without_a_value_is_an_error() -> None:
    board = _dashboard([], [{"name": "q", "type": "custom", "current": {}}], ["x"])
    with pytest.raises(ValueError, match="q"):
        dashboard_variables(board)


def test_dashboard_queries_cover_rows_and_variables_and_skip_k8s_only(tmp_path: Path) -> None:
    variable = {
        "name": "service",
        "type": "query",
        "includeAll": True,
        "allValue": ".+",
        "query": {"query": 'label_values(up{job="kaya787-app"}, service)'},
    }
    local = _dashboard(
        ["kaya787"],
        [variable],
        ['sum(rate(a{service=~"$service"}[$__rate_interval])) > 1', "b", "c or d"],
    )
    (tmp_path / "local.json").write_text(json.dumps(local))
    cluster = _dashboard([K8S_ONLY_TAG], [], ["kafka_consumergroup_lag"])
    (tmp_path / "cluster.json").write_text(json.dumps(cluster))

    queries = dashboard_queries(tmp_path)

    assert [(q.source, q.expr, q.must_return) for q in queries] == [
        ("local.json: variable service", 'up{job="kaya787-app"}', 'up{job="kaya787-app"}'),
        (
            "local.json: p1 [A]",
            'sum(rate(a{service=~".+"}[1m])) > 1',
            'sum(rate(a{service=~".+"}[1m]))',
        ),
        ("local.json: p2 [B]", "b", "b"),
        ("local.json: p2 [B]", "c or d", "c or d"),
    ]


def test_rule_queries_strip_alert_thresholds_but_keep_recording_rules(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": "Down", "expr": 'up{job="x"} == 0'},
                    {"record": "job:up:sum", "expr": "sum by (job) (up) > 0"},
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    assert [(q.source, q.must_return) for q in rule_queries(path)] == [
        ("rules.yml: g/Down", 'up{job="x"}'),
        ("rules.yml: g/job:up:sum", "sum by (job) (up) > 0"),
    ]


def test_every_shipped_alert_has_a_series_part_without_its_threshold() -> None:
    queries = rule_queries()
    assert queries
    for query in queries:
        assert query.must_return, query.source
        assert len(query.must_return) < len(query.expr), query.source
        assert not any(op in query.must_return.split("}")[-1] for op in (" > ", " == ", " < ")), (
            query.source
        )
