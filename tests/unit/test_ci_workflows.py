"""The GitHub Actions workflows: actionlint-clean, and the kind job deploys what we test."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.k8s import APP_IDS, K8S, load_yaml, objects, tool
from tests.support.platform import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CI: dict[str, Any] = load_yaml(ROOT / ".github" / "workflows" / "ci.yaml")


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool("actionlint")), "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_actionlint_passes_on_every_workflow() -> None:
    assert WORKFLOWS
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n      - uses: actions/checkout\n"
    )
    result = _actionlint(broken)
    assert result.returncode != 0
    assert "nope" in result.stdout


def _run_lines(job: str) -> str:
    return "\n".join(step.get("run", "") for step in CI["jobs"][job]["steps"])


def _uses(job: str) -> list[str]:
    return [step["uses"].split("@")[0] for step in CI["jobs"][job]["steps"] if "uses" in step]


def test_the_test_job_runs_the_suite_like_make_test() -> None:
    assert "bash .ci/run" in _run_lines("test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_e2e_job_deploys_an_overlay_on_kind_with_dapr_init() -> None:
    job = CI["jobs"]["e2e-kind"]
    assert job["needs"] == "test"
    assert "helm/kind-action" in _uses("e2e-kind")
    run = _run_lines("e2e-kind")
    assert re.search(r"^\s*dapr init -k", run, re.M)
    assert "k8s/scripts/install-infra.sh" in run
    assert "k8s/scripts/create-secrets.sh" in run
    (overlay,) = re.findall(r"kubectl apply -k (k8s/overlays/\w+)", run)
    assert (ROOT / overlay / "kustomization.yaml").is_file()
    assert "k8s/scripts/smoke.sh" in run
    assert re.search(r"pytest tests/e2e", run)


def test_the_e2e_job_runs_the_dapr_version_the_cluster_values_pin() -> None:
    values = load_yaml(K8S / "helm" / "dapr.yaml")
    assert CI["jobs"]["e2e-kind"]["env"]["DAPR_VERSION"] == values["global"]["tag"]


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_e2e_job_builds_and_loads_the_images_the_overlay_runs(app_id: str) -> None:
    run = _run_lines("e2e-kind")
    deployment = objects("dev").one("Deployment", app_id, f"kaya787-{app_id}")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    built = run.replace("$app", app_id)
    assert f'-t "{image}"' in built
    assert f'kind load docker-image --name kaya787 "{image}"' in built
    assert f"docker/{app_id}.Dockerfile" in built
