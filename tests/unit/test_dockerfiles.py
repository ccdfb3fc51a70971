"""One Dockerfile per app: multi-stage, locked dependencies, non-root, the right module."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.support.k8s import APP_IDS, run_file_app
from tests.support.platform import ROOT

DOCKER = ROOT / "docker"


def _dockerfile(app_id: str) -> str:
    return (DOCKER / f"{app_id}.Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _args(text: str) -> dict[str, str]:
    """ARG NAME=default lines."""
    found: dict[str, str] = {}
    for word, rest in _instructions(text):
        if word == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            found[name] = default
    return found


def _entrypoint_module(text: str) -> str:
    (entrypoint,) = [rest for word, rest in _instructions(text) if word == "ENTRYPOINT"]
    match = re.fullmatch(r'\["python", "-m", "([\w.]+)"\]', entrypoint)
    assert match, f"ENTRYPOINT is not exec-form python -m: {entrypoint}"
    return match.group(1)


def module_exists(module: str) -> bool:
    """Whether `python -m module` names a package with __main__.py under apps/*/src."""
    return any(
        (src / module.replace(".", "/") / "__main__.py").is_file()
        for src in (ROOT / "apps").glob("*/src")
    )


def test_there_is_one_dockerfile_per_app_and_nothing_else() -> None:
    # The ops console (apps/ops) is an app without a sidecar: it has an image too.
    assert sorted(p.stem for p in DOCKER.glob("*.Dockerfile")) == sorted((*APP_IDS, "ops"))


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_entrypoint_names_the_apps_existing_module(app_id: str) -> None:
    module = _entrypoint_module(_dockerfile(app_id))
    assert module_exists(module), module
    # The same module the run file starts locally.
    assert run_file_app(app_id)["command"][1:] == ["-m", module]


def test_the_module_check_can_fail() -> None:
    assert not module_exists("kaya787_nothing")
    with pytest.raises(AssertionError, match="exec-form"):
        _entrypoint_module("ENTRYPOINT python -m kaya787_identity\n")


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_build_is_multi_stage_and_locked(app_id: str) -> None:
    text = _dockerfile(app_id)
    steps = _instructions(text)
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) >= 2
    images = {name: value for name, value in _args(text).items() if name.endswith("_IMAGE")}
    for image in images.values():
        name, _, tag = image.rpartition(":")
        assert name, image
        assert tag not in ("", "latest"), image
    runs = [rest for word, rest in steps if word == "RUN" and "uv sync" in rest]
    package = tomllib.loads((ROOT / "apps" / app_id / "pyproject.toml").read_text())["project"][
        "name"
    ]
    assert runs
    assert all("--frozen" in r and "--no-dev" in r for r in runs)
    assert all(f"--package {package}" in r for r in runs)
    assert "--no-editable" in runs[-1]  # the runtime stage copies a self-contained venv
    copies = [rest for word, rest in steps if word == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies
    assert f"apps/{app_id}/src apps/{app_id}/src" in copies
    assert _args(text)["UV_VERSION"] == _versions()["UV_VERSION"]


def _versions() -> dict[str, str]:
    text = (ROOT / "tools" / "versions.env").read_text()
    return dict(re.findall(r"^(\w+)=(\S+)$", text, re.M))


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_image_runs_as_non_root_with_the_apps_settings(app_id: str) -> None:
    steps = _instructions(_dockerfile(app_id))
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    (user,) = [rest for word, rest in final if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 10000
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert f"APP_ID={app_id}" in env
    assert f"APP_PORT={run_file_app(app_id)['appPort']}" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # read-only root filesystem


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set(Path(ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var"} <= ignored
