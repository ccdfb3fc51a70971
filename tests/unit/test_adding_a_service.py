"""docs/adding-a-service.md, followed literally in a copy of the repository: its commands
scaffold a throwaway app, the checks it names pass, and the launcher plans the new app with
its sidecar, state store, scopes and ACL.

The commands are read from the page's `bash` blocks, so the page and this test cannot
drift: a step this test does not know fails it. One step is not run as written: `make
bootstrap` would install the new package into the shared .venv (the copy links to it), so
the package's source goes on PYTHONPATH instead; `uv lock` runs offline, from uv's cache.
Starting the app with its real sidecar is tests/integration/test_new_service.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.platform import ROOT

DOC = ROOT / "docs" / "adding-a-service.md"
NAME = "notes"
RUN_IT = "## 3. Run it"


def commands(section: str | None = None) -> list[str]:
    """The command lines of the page's bash blocks (of one section, when given)."""
    text = DOC.read_text()
    if section is not None:
        start = text.index(section)
        end = text.find("\n## ", start + 1)
        text = text[start : end if end > 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def copy_of_the_repository(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored), with links to its .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative, follow_symlinks=False)
    (target / ".venv").symlink_to(ROOT / ".venv")
    if (ROOT / ".mypy_cache").is_dir():  # a warm cache: `make typecheck` takes seconds
        shutil.copytree(ROOT / ".mypy_cache", target / ".mypy_cache")
    return target


def _shell(copy: Path, line: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAYA787_", "PYTEST_"))}
    # Where `make bootstrap` would have installed the new package.
    env["PYTHONPATH"] = str(copy / "apps" / NAME / "src")
    return subprocess.run(
        ["bash", "-c", line],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def follow(copy: Path, line: str) -> subprocess.CompletedProcess[str] | None:
    """Run one step of the page in the copy; None for a step not run here."""
    if line == "uv lock && make bootstrap":
        if shutil.which("uv") is None:
            return None
        locked = _shell(copy, "UV_PYTHON_DOWNLOADS=never uv lock --offline")
        if locked.returncode != 0 and "offline" in locked.stderr.lower():
            return None  # uv's cache lacks an index page: the lock needs the network
        return locked
    known = (
        f".venv/bin/kaya787 new-service {NAME}",
        ".venv/bin/python tools/architecture_diagram.py --write",
        "make lint typecheck",
        ".venv/bin/pytest ",
        ".venv/bin/kaya787 status",
    )
    if not line.startswith(known):
        raise AssertionError(f"the walkthrough has a step this test does not follow: {line}")
    return _shell(copy, line)


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The copy after every step before "Run it", and what each step printed."""
    copy = copy_of_the_repository(tmp_path_factory.mktemp("repo"))
    results: dict[str, Any] = {}
    for line in commands("## 1.") + commands("## 2."):
        results[line] = follow(copy, line)
    return copy, results


def _kaya(copy: Path, *argv: str) -> Any:
    done = _shell(copy, " ".join([".venv/bin/kaya787", *argv]))
    assert done.returncode in ((0, 3) if argv[0] == "status" else (0,)), done.stderr
    return json.loads(done.stdout)


def test_the_page_is_scaffold_install_check_run() -> None:
    lines = commands()
    assert lines[0] == f".venv/bin/kaya787 new-service {NAME}"
    assert "make lint typecheck" in lines
    assert commands(RUN_IT)[0] == "make up"


def test_every_step_succeeds(followed: tuple[Path, dict[str, Any]]) -> None:
    _, results = followed
    for line, result in results.items():
        if result is None:
            continue
        ok = (0, 3) if line == ".venv/bin/kaya787 status" else (0,)
        assert result.returncode in ok, f"{line}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    pytest_runs = [r for line, r in results.items() if line.startswith(".venv/bin/pytest")]
    assert pytest_runs
    assert all(" passed" in r.stdout and "skipped" not in r.stdout for r in pytest_runs)


def test_the_lock_has_the_new_package(followed: tuple[Path, dict[str, Any]]) -> None:
    copy, results = followed
    if results["uv lock && make bootstrap"] is None:
        pytest.skip("uv cannot lock offline here")
    assert f'name = "kaya787-{NAME}"' in (copy / "uv.lock").read_text()


def test_status_lists_the_app_and_its_sidecar_and_writes_nothing(
    followed: tuple[Path, dict[str, Any]],
) -> None:
    copy, _ = followed
    rows = {row["name"]: row for row in _kaya(copy, "status", "--json")}
    assert rows[f"daprd-{NAME}"]["ports"] == {
        f"{NAME} sidecar HTTP": 3506,
        f"{NAME} sidecar gRPC": 50106,
        f"{NAME} sidecar internal gRPC": 50206,
        f"{NAME} sidecar metrics": 9206,
    }
    assert rows[f"app-{NAME}"]["ports"] == {f"{NAME} app": 8106}
    assert not (copy / "var").exists()


def test_the_sidecar_loads_its_own_store_and_its_configuration(
    followed: tuple[Path, dict[str, Any]],
) -> None:
    from kaya787_launcher.paths import Layout
    from kaya787_launcher.stack import Stack

    copy, _ = followed
    for profile in ("local", "kafka"):
        stack = Stack(Layout(copy), profile=profile, say=lambda _: None)
        argv = list(stack.sidecar(stack.run_file.app(NAME)).spec.argv)
        assert argv[argv.index("--app-id") + 1] == NAME
        assert argv[argv.index("--config") + 1] == str(copy / "dapr" / "configs" / f"{NAME}.yaml")
        resources = [argv[i + 1] for i, a in enumerate(argv) if a == "--resources-path"]
        assert str(copy / "components" / profile / "state" / NAME) in resources
    components = _kaya(copy, "components", "-o", "json")
    scopes = {(Path(c["file"]).parent.name, c["name"]): c["scopes"] for c in components}
    assert scopes[(NAME, "statestore")] == [NAME]
    assert NAME in scopes[("local", "secretstore")]
    assert NAME in scopes[("local", "pubsub")]
    pubsub = yaml.safe_load((copy / "components" / "local" / "pubsub.yaml").read_text())
    metadata = {m["name"]: m.get("value") for m in pubsub["spec"]["metadata"]}
    assert f"{NAME}=identity.token-revoked.v1" in metadata["subscriptionScopes"].split(";")
    assert f"{NAME}=" in metadata["publishingScopes"].split(";")


def test_only_the_gateway_may_call_it_and_it_may_only_read_identitys_keys(
    followed: tuple[Path, dict[str, Any]],
) -> None:
    copy, _ = followed
    configurations = {c["name"]: c for c in _kaya(copy, "configurations", "-o", "json")}
    mine = configurations[NAME]
    assert (mine["used_by"], mine["mtls"], mine["acl_default"]) == ([NAME], True, "deny")
    acl = yaml.safe_load((copy / "dapr" / "configs" / f"{NAME}.yaml").read_text())
    policies = {p["appId"]: p for p in acl["spec"]["accessControl"]["policies"]}
    assert set(policies) == {"gateway"}
    assert f"/api/v1/{NAME}/**" in {op["name"] for op in policies["gateway"]["operations"]}
    identity = yaml.safe_load((copy / "dapr" / "configs" / "identity.yaml").read_text())
    theirs = {p["appId"]: p for p in identity["spec"]["accessControl"]["policies"]}
    assert {op["name"] for op in theirs[NAME]["operations"]} == {
        "/.well-known/jwks.json",
        "/internal/revocations",
        "/internal/revocations/**",
    }
    routes = yaml.safe_load((copy / "gateway" / "routes.yaml").read_text())["routes"]
    assert {"path": f"/api/v1/{NAME}/", "match": "prefix", "app": NAME, "auth": True} in routes


def test_a_second_scaffold_of_the_same_name_is_refused(
    followed: tuple[Path, dict[str, Any]],
) -> None:
    copy, _ = followed
    before = (copy / "dapr" / "dapr.yaml").read_text()
    again = _shell(copy, f".venv/bin/kaya787 new-service {NAME}")
    assert again.returncode == 2
    assert "exists already" in again.stderr
    assert (copy / "dapr" / "dapr.yaml").read_text() == before
