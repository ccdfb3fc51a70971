"""Start and stop detached processes, tracked by pid files that survive the launcher.

Each process gets its own session (process group), so `down` from any shell can stop
exactly what `up` started, and nothing depends on the terminal that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kaya787_launcher.paths import Layout


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    # PostgreSQL takes SIGTERM as "wait for every client to leave"; SIGINT is its fast
    # shutdown. Everything else stops on SIGTERM.
    stop_signal: int = signal.SIGTERM


def _start_ticks(pid: int) -> str | None:
    """The kernel's start time of a pid: tells our process from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so split after its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    start_ticks: str
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks


class ProcessTable:
    def __init__(self, layout: Layout) -> None:
        self._layout = layout

    def log_path(self, name: str) -> Path:
        return self._layout.logs / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self._layout.pids / f"{name}.json"

    def get(self, name: str) -> Tracked | None:
        path = self._pid_path(name)
        try:
            data = json.loads(path.read_text())
            tracked = Tracked(
                name,
                int(data["pid"]),
                str(data["start_ticks"]),
                int(data.get("stop_signal", signal.SIGTERM)),
            )
        except (OSError, ValueError, KeyError):
            return None
        # A stale pid file is left for `stop`/`forget_stale` to remove: reading the
        # table (status, list) writes nothing.
        return tracked if tracked.alive() else None

    def running(self) -> list[Tracked]:
        found = []
        for path in sorted(self._layout.pids.glob("*.json")):
            tracked = self.get(path.stem)
            if tracked is not None:
                found.append(tracked)
        return found

    def forget_stale(self) -> list[str]:
        """Remove the pid files of processes that are gone; their names."""
        stale = [
            path for path in sorted(self._layout.pids.glob("*.json")) if not self.get(path.stem)
        ]
        for path in stale:
            path.unlink(missing_ok=True)
        return [path.stem for path in stale]

    def start(self, spec: ProcessSpec, *, slot: str | None = None) -> Tracked:
        """Start `spec` unless its slot (pid file; default its name) runs already. A rolling
        restart starts the successor in another slot; it logs to the same file."""
        slot = slot or spec.name
        existing = self.get(slot)
        if existing is not None:
            return existing
        self._layout.ensure()
        log = self.log_path(spec.name).open("ab")
        try:
            proc = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        ticks = None
        for _ in range(50):
            ticks = _start_ticks(proc.pid)
            if ticks is not None:
                break
            time.sleep(0.01)
        tracked = Tracked(slot, proc.pid, ticks or "", spec.stop_signal)
        self._pid_path(slot).write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "start_ticks": tracked.start_ticks,
                    "stop_signal": spec.stop_signal,
                    "argv": list(spec.argv),
                }
            )
        )
        return tracked

    def rename(self, slot: str, name: str) -> None:
        """Track the process of `slot` as `name` from now on (a successor taking over)."""
        os.replace(self._pid_path(slot), self._pid_path(name))

    def stop(self, name: str, *, grace: float = 10.0, kill: bool = False) -> bool:
        """Stop one process group; True when something was running."""
        return bool(self.stop_many([name], grace=grace, kill=kill))

    def stop_many(
        self, names: Sequence[str], *, grace: float = 10.0, kill: bool = False
    ) -> list[str]:
        """Signal every one of these process groups at once, then wait for all of them
        (SIGKILL after `grace`): apps draining side by side take one drain, not one each.
        The names of those that were running."""
        tracked = [t for t in (self.get(name) for name in names) if t is not None]
        for one in tracked:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(one.pid, signal.SIGKILL if kill else one.stop_signal)
        deadline = time.monotonic() + grace
        while any(t.alive() for t in tracked) and time.monotonic() < deadline:
            for one in tracked:
                _reap(one.pid)
            time.sleep(0.05)
        for one in tracked:
            if one.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(one.pid, signal.SIGKILL)
        while any(t.alive() for t in tracked):
            for one in tracked:
                _reap(one.pid)
            time.sleep(0.05)
        for one in tracked:
            self._pid_path(one.name).unlink(missing_ok=True)
        return [t.name for t in tracked]

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def listening_inodes(proc_net_tcp: str, port: int) -> set[str]:
    """The socket inodes listening on `port`, from the text of /proc/<pid>/net/tcp(6)."""
    found = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], fields[9]
        if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
            found.add(inode)
    return found


_TCP_LISTEN = "0A"


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds a socket listening on TCP `port` (another
    process sharing the port with SO_REUSEPORT does not count)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes(Path(f"/proc/{pid}/net/{table}").read_text(), port)
        except OSError:
            continue
    if not inodes:
        return False
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _reap(pid: int) -> None:
    # Our own children become zombies until waited for; others are reaped by init.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
