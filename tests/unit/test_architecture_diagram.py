"""The architecture diagram in README.md and docs/architecture.md is the one the repo's
configuration gives (tools/architecture_diagram.py), so it cannot drift from the code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.platform import ROOT
from tools import architecture_diagram as diagram

TOOL = ROOT / "tools" / "architecture_diagram.py"


def test_the_committed_diagrams_are_up_to_date() -> None:
    outdated = diagram.stale(ROOT)
    assert outdated == [], (
        f"the architecture diagram in {', '.join(outdated)} differs from what the configuration "
        f"gives: run `{diagram.COMMAND}` and commit the result"
    )


def test_the_diagram_states_the_facts_of_the_configuration() -> None:
    topology = diagram.read(ROOT)
    assert topology.apps == ["identity", "accounts", "transactions", "analytics", "partner"]
    assert topology.sidecar_only == ["gateway"]
    assert topology.without_sidecar == ["ops"]
    # Only transactions may reach the ledger's internal API and the payment partner.
    assert topology.calls[("transactions", "accounts")] == ["/internal/**"]
    assert [caller for caller, callee in topology.calls if callee == "partner"] == ["transactions"]
    assert [caller for caller, callee in topology.calls if callee == "accounts"] == ["transactions"]
    assert "/api/v1/transfers" in topology.routes["transactions"]
    assert "accounts.postings.v1" in topology.publishes["accounts"]
    assert "accounts.postings.v1" in topology.subscribes["analytics"]
    assert topology.publishes["transactions"] == []
    stores = {c.scopes: c.types for c in topology.components if c.name == "statestore"}
    assert stores[("accounts",)] == {"local": "state.sqlite v1", "kafka": "state.postgresql v2"}
    text = diagram.block(ROOT)
    assert 'transactions -->|"/internal/**"| accounts' in text
    assert "t_accounts_postings_v1 -.-> analytics" in text


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("dapr", "gateway", "components", "apps"):
        shutil.copytree(
            ROOT / name, root / name, ignore=shutil.ignore_patterns("node_modules", "src")
        )
    for name in diagram.TARGETS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    return root


def test_a_changed_access_control_list_makes_the_check_fail(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "dapr" / "configs" / "partner.yaml"
    config = yaml.safe_load(path.read_text())
    config["spec"]["accessControl"]["policies"].append(
        {
            "appId": "analytics",
            "namespace": "default",
            "operations": [{"name": "/internal/payins", "httpVerb": ["POST"], "action": "allow"}],
        }
    )
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [sys.executable, str(TOOL), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 1
    assert "README.md" in check.stderr
    assert diagram.COMMAND in check.stderr
    assert '  analytics -->|"/internal/payins"| partner' in diagram.block(root)

    subprocess.run([sys.executable, str(TOOL), "--write", "--root", str(root)], check=True)
    assert diagram.stale(root) == []


def test_a_file_without_markers_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "README.md").write_text("# no diagram here\n")
    with pytest.raises(SystemExit, match="markers"):
        diagram.stale(root)
