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


def _workspace_members() -> dict[str, Path]:
    """Package name -> folder of every uv workspace member."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            manifest = folder / "pyproject.toml"
            if manifest.is_file():
                members[tomllib.loads(manifest.read_text())["project"]["name"]] = folder
    return members


def _workspace_needs(package: str, members: dict[str, Path]) -> set[str]:
    """The workspace packages `package` depends on, directly or not, itself included."""
    needed, queue = set(), [package]
    while queue:
        name = queue.pop()
        if name in needed:
            continue
        needed.add(name)
        manifest = tomllib.loads((members[name] / "pyproject.toml").read_text())
        for requirement in manifest["project"].get("dependencies", []):
            dependency = re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0]
            if dependency in members:
                queue.append(dependency)
    return needed


@pytest.mark.parametrize("app_id", [*APP_IDS, "ops"])
def test_the_image_gets_every_workspace_manifest_and_the_sources_it_imports(app_id: str) -> None:
    # `uv sync --frozen` needs every member's manifest; the image needs the source of every
    # workspace library the app depends on (the kit, the event contracts), transitively.
    members = _workspace_members()
    copies = [rest for word, rest in _instructions(_dockerfile(app_id)) if word == "COPY"]
    for folder in members.values():
        relative = folder.relative_to(ROOT).as_posix()
        assert f"{relative}/pyproject.toml {relative}/" in copies, relative
    package = f"kaya787-{app_id}"
    for name in _workspace_needs(package, members):
        relative = members[name].relative_to(ROOT).as_posix()
        assert f"{relative}/src {relative}/src" in copies, (app_id, name)


def test_the_workspace_walk_finds_the_libraries_through_the_kit() -> None:
    members = _workspace_members()
    assert {"kaya787-kit", "kaya787-contracts"} <= _workspace_needs("kaya787-partner", members)
    assert "kaya787-identity" not in _workspace_needs("kaya787-partner", members)


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set(Path(ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var"} <= ignored
