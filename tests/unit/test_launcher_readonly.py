"""`kaya787 status`, the listings and `make down` leave var/ as they found it.

What `down` may change, precisely: it removes the pid files of var/run/pids/ (of what it
stopped, and stale ones of processes already gone) and the running-profile marker
var/run/profile. It creates nothing and modifies nothing; everything else reads.

The CLI runs for real (a subprocess, as `make` runs it) against a copy of the repository's
layout whose var/ is that of a platform that was up: dev secrets, certificates, rendered
configs, logs and tracked processes (stand-ins that sleep, started by the launcher's own
process table).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kaya787_launcher.paths import Layout
from kaya787_launcher.processes import ProcessSpec, ProcessTable
from kaya787_launcher.stack import PROFILE_FILE, Stack

from tests.support.platform import ROOT

KAYA = str(ROOT / ".venv" / "bin" / "kaya787")
# The processes whose prepare steps are cheap and need no installed binary.
PREPARED = ("redis", "scheduler", "daprd-identity", "daprd-gateway", "nginx")
TRACKED = ("redis", "daprd-identity", "app-identity", "nginx")
READERS = (
    ("status",),
    ("status", "--json"),
    ("list", "-o", "json"),
    ("components",),
    ("configurations",),
    ("mtls",),
    ("mtls", "expiry"),
    ("logs", "identity", "--tail", "5"),
    ("env", "identity"),
)

Snapshot = dict[str, tuple[int, int, int]]


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    # dapr/ is copied: the run file's paths resolve, and the verbs show them under the root.
    shutil.copytree(ROOT / "dapr", root / "dapr")
    for name in ("components", "apps", "gateway", "observability", "tools", "Makefile"):
        (root / name).symlink_to(ROOT / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    return root


def snapshot(var: Path) -> Snapshot:
    """Every file under var/: (mtime in ns, size, mode). Directories count by their files."""
    found: Snapshot = {}
    if not var.exists():
        return found
    for path in sorted(var.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found[str(path.relative_to(var))] = (info.st_mtime_ns, info.st_size, info.st_mode)
    return found


def _run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAYA787_ROOT": str(root)}
    env.pop("KAYA787_TRACE_SAMPLING", None)
    return subprocess.run(
        list(argv),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def was_up(tmp_path: Path) -> Iterator[Layout]:
    """A layout whose var/ is that of a running platform (stand-in processes)."""
    layout = Layout(_root(tmp_path))
    stack = Stack(layout, say=lambda _: None)
    stack.prepare()
    for managed in (m for tier in stack.tiers() for m in tier):
        if managed.spec.name in PREPARED and managed.prepare is not None:
            managed.prepare()
    table = ProcessTable(layout)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    for name in TRACKED:
        table.start(ProcessSpec(name, sleeper, layout.root))
    (layout.run / PROFILE_FILE).write_text("local")
    # A process that died on its own: its pid file is stale.
    (layout.pids / "app-accounts.json").write_text('{"pid": 999999999, "start_ticks": "1"}')
    try:
        yield layout
    finally:
        for name in TRACKED:
            table.stop(name, grace=1.0)


def test_status_and_the_listings_write_nothing(was_up: Layout) -> None:
    before = snapshot(was_up.var)
    assert "run/pids/app-accounts.json" in before
    for argv in READERS:
        result = _run(was_up.root, KAYA, *argv)
        assert result.returncode in (0, 3), (argv, result.stderr)
        assert snapshot(was_up.var) == before, f"`kaya787 {' '.join(argv)}` changed var/"
    status = _run(was_up.root, KAYA, "status").stdout
    assert "app-identity" in status
    assert "starting" in status  # tracked, though its probe fails: it was read, not started


def test_make_down_only_removes_pid_files_and_the_profile_marker(was_up: Layout) -> None:
    table = ProcessTable(was_up)
    pids = {name: tracked.pid for name in TRACKED if (tracked := table.get(name))}
    assert set(pids) == set(TRACKED)
    before = snapshot(was_up.var)

    result = _run(was_up.root, "make", "down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stopped {len(TRACKED)} processes" in result.stdout

    after = snapshot(was_up.var)
    assert set(after) <= set(before), f"created: {sorted(set(after) - set(before))}"
    for name, stats in after.items():
        assert stats == before[name], f"down modified var/{name}"
    removed = set(before) - set(after)
    allowed = {f"run/{PROFILE_FILE}"} | {n for n in before if n.startswith("run/pids/")}
    assert removed <= allowed, f"down removed {sorted(removed - allowed)}"
    assert not any(name.startswith("run/pids/") for name in after)  # stale one included
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"pid {pid} survived"


def test_status_and_down_on_a_fresh_checkout_create_no_var(tmp_path: Path) -> None:
    root = _root(tmp_path)
    status = _run(root, KAYA, "status")
    assert status.returncode == 3, status.stderr  # nothing is ready
    assert "stopped" in status.stdout
    down = _run(root, "make", "down")
    assert down.returncode == 0, down.stderr
    assert not (root / "var").exists()


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
