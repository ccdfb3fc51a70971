"""The launcher's side of a rolling restart and a graceful stop: who listens on a port (from
/proc), stopping several processes at once, the successor's pid-file slot, the CLI verb,
and the sidecar's app health settings taken from the run file."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from kaya787_launcher import cli, sidecars
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.processes import ProcessSpec, ProcessTable, listening_inodes, listens_on
from kaya787_launcher.topology import ControlPlanePorts, load_run_file

from tests.support.platform import ROOT

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1FA6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0
   1: 0100007F:1FA6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0
   2: 0100007F:1FA7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5000 1 0
   3: 0100007F:1FA6 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 6000 1 0
"""


def test_listening_inodes_reads_only_listeners_of_the_port() -> None:
    # 0x1FA6 = 8102; state 0A = LISTEN (01, ESTABLISHED, is a connection, not a listener).
    assert listening_inodes(PROC_NET_TCP, 8102) == {"4242", "4343"}
    assert listening_inodes(PROC_NET_TCP, 8103) == {"5000"}
    assert listening_inodes(PROC_NET_TCP, 9999) == set()
    assert listening_inodes("header only\n", 8102) == set()


def test_listens_on_sees_this_process_listening_and_not_a_bare_bound_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not listens_on(os.getpid(), port)  # bound, not listening yet
        sock.listen(1)
        assert listens_on(os.getpid(), port)
    assert not listens_on(os.getpid(), port)


def _table(tmp_path: Path) -> ProcessTable:
    layout = Layout(tmp_path)
    layout.ensure()
    return ProcessTable(layout)


# A process that takes one second to stop after SIGTERM, as a draining app does.
SLOW_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(0)))\n"
    "time.sleep(60)\n"
)


def test_stop_many_signals_all_at_once_and_waits_for_all(tmp_path: Path) -> None:
    table = _table(tmp_path)
    for name in ("app-a", "app-b", "app-c"):
        table.start(ProcessSpec(name, [sys.executable, "-c", SLOW_STOP], tmp_path))
    time.sleep(0.5)  # their SIGTERM handlers are in place
    started = time.monotonic()
    stopped = table.stop_many(["app-a", "app-b", "app-c", "not-running"], grace=10.0)
    elapsed = time.monotonic() - started
    assert sorted(stopped) == ["app-a", "app-b", "app-c"]
    assert table.running() == []
    assert elapsed < 2.5, f"one drain for all, not one each ({elapsed:.1f}s)"


def test_a_successor_runs_in_its_own_slot_logs_to_the_same_file_and_takes_over(
    tmp_path: Path,
) -> None:
    table = _table(tmp_path)
    spec = ProcessSpec("app-demo", ["sh", "-c", "echo from-$$; sleep 30"], tmp_path)
    old = table.start(spec)
    new = table.start(spec, slot="app-demo.next")
    try:
        assert new.pid != old.pid
        assert new.name == "app-demo.next"
        for _ in range(100):  # both have written their line
            if table.tail("app-demo").count("from-") == 2:
                break
            time.sleep(0.05)
        assert table.tail("app-demo").count("from-") == 2  # both write app-demo.log
        assert table.stop("app-demo", grace=5.0)
        table.rename("app-demo.next", "app-demo")
        assert table.get("app-demo") is not None
        assert table.get("app-demo").pid == new.pid  # type: ignore[union-attr]
        assert table.get("app-demo.next") is None
    finally:
        table.stop("app-demo")
        table.stop("app-demo.next")


def test_the_restart_verb_has_a_rolling_mode_exclusive_of_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = cli._parse(["restart", "accounts", "--rolling"])
    assert (args.app_id, args.rolling, args.kill, args.sidecar) == ("accounts", True, False, False)
    for other in ("--kill", "--sidecar"):
        with pytest.raises(SystemExit):
            cli._parse(["restart", "accounts", "--rolling", other])
    assert "not with --sidecar or --kill" in capsys.readouterr().err
    # What operations.md shows still parses: SIGKILL a sidecar and bring it back.
    args = cli._parse(["restart", "accounts", "--sidecar", "--kill"])
    assert (args.sidecar, args.kill, args.rolling) == (True, True, False)
    with pytest.raises(SystemExit):
        cli._parse(["restart", "--help"])
    assert "--rolling" in capsys.readouterr().out


def test_the_sidecar_takes_the_run_files_app_health_settings(tmp_path: Path) -> None:
    """A probe timing out on a busy machine counts as a failure; past the threshold the
    sidecar refuses every call to its app. dapr/dapr.yaml sets 3 s and 5, as `dapr run`
    would pass them."""
    layout = Layout(ROOT)
    run_file = load_run_file(layout.run_file)
    assert (run_file.app_health_probe_timeout_ms, run_file.app_health_threshold) == (3000, 5)
    managed = sidecars.sidecar(
        layout,
        run_file,
        run_file.app("accounts"),
        profile="local",
        ports=ControlPlanePorts(),
        bin_dir=Path("/opt/dapr/bin"),
        tokens=sidecars.AppTokens("d" * 43, "a" * 43),
        trust_anchors="",
        sampling=None,
    )
    argv = list(managed.spec.argv)
    assert argv[argv.index("--app-health-probe-timeout") + 1] == "3000"
    assert argv[argv.index("--app-health-threshold") + 1] == "5"
    assert "--app-health-probe-interval" not in argv  # unset: daprd's default


def test_a_bad_app_health_setting_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "dapr" / "dapr.yaml").read_text()
    bad = tmp_path / "dapr.yaml"
    bad.write_text(text.replace("appHealthThreshold: 5", "appHealthThreshold: five"))
    with pytest.raises(LauncherError, match="appHealthThreshold"):
        load_run_file(bad)


def test_sigterm_is_what_an_app_is_stopped_with() -> None:
    spec = ProcessSpec("app-demo", ["true"], Path("."))
    assert spec.stop_signal == signal.SIGTERM
