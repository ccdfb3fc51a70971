"""Helm values and install commands: pinned, documented, and the same everywhere."""

from __future__ import annotations

import re

import pytest

from tests.support.k8s import K8S, env_file, load_yaml

HELM = K8S / "helm"
VALUES = sorted(p for p in HELM.glob("*.yaml"))
INSTALL = re.compile(
    r"helm upgrade --install\s+(?P<release>\S+)\s+(?P<chart>\S+)\s+--version\s+(?P<version>\S+)"
    r"(?:(?!helm upgrade).)*?-f k8s/helm/(?P<values>[\w.-]+\.yaml)"
)
CHART_PIN = {
    "cert-manager": "CERT_MANAGER_CHART_VERSION",
    "dapr": "DAPR_CHART_VERSION",
    "strimzi": "STRIMZI_CHART_VERSION",
    "cnpg": "CNPG_CHART_VERSION",
    "keda": "KEDA_CHART_VERSION",
    "kong": "KONG_CHART_VERSION",
    "kube-prometheus-stack": "KUBE_PROMETHEUS_STACK_CHART_VERSION",
    "elastic-operator": "ECK_OPERATOR_CHART_VERSION",
    "jaeger-operator": "JAEGER_OPERATOR_CHART_VERSION",
}


def _joined(text: str) -> str:
    """Shell line continuations (also inside comments) joined into one line."""
    return re.sub(r"\\\n\s*#?\s*", " ", text)


def _commands(text: str) -> dict[str, re.Match[str]]:
    return {m["values"]: m for m in INSTALL.finditer(_joined(text))}


def test_every_values_file_parses_and_documents_its_install_command() -> None:
    pins = env_file(HELM / "versions.env")
    assert VALUES
    for path in VALUES:
        assert isinstance(load_yaml(path), dict), path.name
        (command,) = _commands(path.read_text()).values()
        assert command["values"] == path.name
        assert command["version"] == pins[CHART_PIN[command["release"]]], path.name


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_the_readme_gives_the_same_install_command(path: object) -> None:
    readme = _commands((K8S / "README.md").read_text())
    header = _commands(path.read_text())[path.name]  # type: ignore[attr-defined]
    documented = readme[path.name]  # type: ignore[attr-defined]
    assert (documented["release"], documented["chart"], documented["version"]) == (
        header["release"],
        header["chart"],
        header["version"],
    )


def test_the_install_script_installs_every_values_file_with_its_pin() -> None:
    script = _joined((K8S / "scripts" / "install-infra.sh").read_text())
    releases = re.findall(
        r"^\s*release\s+(\S+)\s+(\S+)\s+\"\$(\w+)\"\s+\S+\s+(\S+\.yaml)", script, re.M
    )
    assert {values for *_, values in releases} == {p.name for p in VALUES}
    for release, _chart, pin, _values in releases:
        assert CHART_PIN[release] == pin, release


def test_secrets_the_manifests_reference_are_documented() -> None:
    readme = (K8S / "README.md").read_text()
    for name in (
        "<app>-dapr-api-token",
        "<app>-app-api-token",
        "identity-signing-keys",
        "gateway-dapr-api-token",
        "gateway-dapr-token-header",
    ):
        assert f"`{name}`" in readme, name
