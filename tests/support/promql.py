"""Every PromQL expression the project ships, ready to run against a real Prometheus.

Sources: the alert rules (observability/prometheus/rules.yml) and the Grafana dashboards
(k8s/observability/dashboards/*.json, minus those tagged k8s-only, whose metrics only a
cluster has). Grafana variables are replaced by the values a user would see first ($__
builtins by fixed windows, a dashboard variable by its "All" value or its current one).

For each expression, `must_return` is the part that has to return series once the platform
has had traffic: an alert's expression without its threshold (the left operand of a
top-level comparison, `and` or `unless`), so an empty answer means a metric or label is
wrong, not that nothing is alerting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.platform import ROOT

RULES_FILE = ROOT / "observability" / "prometheus" / "rules.yml"
DASHBOARDS = ROOT / "k8s" / "observability" / "dashboards"
K8S_ONLY_TAG = "k8s-only"

# Grafana's builtins, as windows that suit a 5 s scrape and a freshly started Prometheus.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.+),\s*(?P<label>\w+)\s*\)\s*$", re.S)
_SET_OPERATOR = re.compile(r"(and|or|unless)\b")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


@dataclass(frozen=True)
class Query:
    source: str
    expr: str
    must_return: str


def detemplate(expr: str, variables: Mapping[str, str]) -> str:
    """Replace Grafana variables ($x, ${x}, ${x:fmt}, [[x]]); unknown ones are an error."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g is not None)
        if name in variables:
            return variables[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")

    return _VARIABLE.sub(value, expr)


def _top_level_operators(expr: str) -> list[tuple[int, int, int]]:
    """(precedence, start, end) of each binary set/comparison operator outside brackets.

    Precedence as PromQL's: or (0) < and, unless (1) < comparisons (2).
    """
    found: list[tuple[int, int, int]] = []
    depth = 0
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i += 1
            while i < len(expr) and expr[i] != ch:
                i += 2 if expr[i] == "\\" and ch != "`" else 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            word = _SET_OPERATOR.match(expr, i)
            if word and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                found.append((0 if word.group(1) == "or" else 1, i, word.end()))
                i = word.end()
                continue
            for op in _COMPARISONS:
                if expr.startswith(op, i):
                    found.append((2, i, i + len(op)))
                    i += len(op)
                    break
            else:
                i += 1
            continue
        i += 1
    return found


def _unwrap(expr: str) -> str:
    """Drop parentheses that enclose the whole expression."""
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # the first "(" closes before the end: "(a) / (b)"
        expr = expr[1:-1].strip()
    return expr


def series_part(expr: str) -> str:
    """The operand that must return series: left of the loosest comparison/and/unless.

    `a or b` is kept whole: either side may rightly be empty.
    """
    expr = _unwrap(expr)
    operators = _top_level_operators(expr)
    if not operators:
        return expr
    loosest = min(p for p, _, _ in operators)
    if loosest == 0:
        return expr
    first = min(start for p, start, _ in operators if p == loosest)
    return series_part(expr[:first])


def rule_queries(path: Path = RULES_FILE) -> list[Query]:
    doc = yaml.safe_load(path.read_text())
    queries = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            expr = str(rule["expr"]).strip()
            part = series_part(expr) if "alert" in rule else expr
            queries.append(Query(f"{path.name}: {group['name']}/{name}", expr, part))
    return queries


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # a collapsed row holds its panels


def dashboard_variables(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each variable's first view: "All" (its allValue, else every value) or its current value."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("type") == "datasource":
            values[name] = "prometheus"
        elif variable.get("includeAll"):
            values[name] = variable.get("allValue") or ".*"
        else:
            current = (variable.get("current") or {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else None
            if not current:
                raise ValueError(f"{dashboard.get('uid')}: variable {name} has no value")
            values[name] = str(current)
    return values


def _variable_query(variable: Mapping[str, Any]) -> str | None:
    query = variable.get("query")
    text = query.get("query") if isinstance(query, dict) else query
    if variable.get("type") != "query" or not isinstance(text, str):
        return None
    match = _LABEL_VALUES.match(text)
    return match.group("selector").strip() if match else None


def dashboard_queries(directory: Path = DASHBOARDS) -> list[Query]:
    queries = []
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text())
        if K8S_ONLY_TAG in dashboard.get("tags", []):
            continue
        variables = dashboard_variables(dashboard)
        for variable in dashboard.get("templating", {}).get("list", []):
            selector = _variable_query(variable)
            if selector is not None:
                expr = detemplate(selector, variables)
                queries.append(Query(f"{path.name}: variable {variable['name']}", expr, expr))
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if not target.get("expr"):
                    continue
                expr = detemplate(str(target["expr"]), variables)
                source = f"{path.name}: {panel['title']} [{target.get('refId', '?')}]"
                queries.append(Query(source, expr, series_part(expr)))
    return queries


def all_queries() -> list[Query]:
    return rule_queries() + dashboard_queries()


def series_count(prometheus_url: str, expr: str, timeout: float = 10.0) -> int:
    """How many series an instant query returns; AssertionError with Prometheus' reason
    when it does not parse or fails."""
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=timeout)
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    return len(result) if isinstance(result, list) else 1
