"""Pid-file tracking: start, find, stop by process group, and survive pid reuse."""

import json
import sys
from pathlib import Path

from kaya787_launcher.paths import Layout
from kaya787_launcher.processes import ProcessSpec, ProcessTable


def _table(tmp_path: Path) -> ProcessTable:
    layout = Layout(tmp_path)
    layout.ensure()
    return ProcessTable(layout)


def test_start_is_tracked_and_stop_ends_the_whole_group(tmp_path: Path) -> None:
    table = _table(tmp_path)
    # A parent that spawns a child: stopping must take both.
    script = "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)"
    tracked = table.start(ProcessSpec("demo", [sys.executable, "-c", script], tmp_path))
    assert table.get("demo") == tracked
    assert [t.name for t in table.running()] == ["demo"]
    assert table.stop("demo", grace=5.0) is True
    assert table.get("demo") is None
    assert table.running() == []
    assert table.stop("demo") is False


def test_starting_twice_returns_the_running_process(tmp_path: Path) -> None:
    table = _table(tmp_path)
    spec = ProcessSpec("sleeper", ["sleep", "30"], tmp_path)
    first = table.start(spec)
    try:
        assert table.start(spec).pid == first.pid
    finally:
        table.stop("sleeper")


def test_a_reused_pid_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    table = _table(tmp_path)
    # A pid file pointing at a live process (ourselves) but with another start time.
    import os

    (tmp_path / "var" / "run" / "pids" / "ghost.json").write_text(
        json.dumps({"pid": os.getpid(), "start_ticks": "1"})
    )
    assert table.get("ghost") is None
    assert table.stop("ghost") is False


def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    table = _table(tmp_path)
    table.start(ProcessSpec("echo", ["sh", "-c", "echo hello-log; sleep 30"], tmp_path))
    try:
        import time

        for _ in range(50):
            if "hello-log" in table.tail("echo"):
                break
            time.sleep(0.05)
        assert "hello-log" in table.tail("echo")
    finally:
        table.stop("echo")
