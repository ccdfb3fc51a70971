"""The whole local platform, run: prepare, start in tiers, wait, stop, report.

What runs is planned by plan.py from pure builders (one module per kind of process); this
module only runs the plan. Only `up` and the start verbs write into var/ (dev secrets
first, then each process's prepare step just before it starts); `status`, `down` and the
listings read, and `down` removes only the run state of what it stopped (pid files and
the running-profile marker).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kaya787_launcher import devsecrets, port_reservation
from kaya787_launcher.gateway import EdgeLimits
from kaya787_launcher.managed import Managed, program
from kaya787_launcher.paths import LauncherError, Layout, dapr_bin_dir
from kaya787_launcher.plan import Plan
from kaya787_launcher.probes import port_in_use, wait_until
from kaya787_launcher.processes import ProcessTable, listens_on
from kaya787_launcher.sidecars import TRACE_SAMPLING_ENV, trace_sampling
from kaya787_launcher.topology import (
    DEFAULT_PROFILE,
    KAFKA_PROFILE,
    AppSpec,
    ControlPlanePorts,
    RunFile,
    load_run_file,
)

__all__ = ["PROFILE_FILE", "TRACE_SAMPLING_ENV", "Stack"]

DAPR_BINARIES = ("daprd", "placement", "scheduler", "sentry")
PROFILE_FILE = "profile"
# An app drains for SHUTDOWN_DRAIN_SECONDS (2) then has SHUTDOWN_GRACE_SECONDS (10) for
# what is in flight, and its lifespan's shutdown after that: SIGKILL only past this.
APP_STOP_GRACE = 20.0
# The pid-file slot of the process that takes over during a rolling restart.
SUCCESSOR = ".next"
Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stack:
    def __init__(self, layout: Layout, profile: str | None = None, say: Say = _stderr) -> None:
        self.layout = layout
        self.ports = ControlPlanePorts()
        self.table = ProcessTable(layout)
        self.run_file: RunFile = load_run_file(layout.run_file)
        self.profile = profile or self._running_profile() or DEFAULT_PROFILE
        self._say = say
        self._bin = dapr_bin_dir()

    # ----------------------------------------------------------------- planning
    def _running_profile(self) -> str | None:
        path = self.layout.run / PROFILE_FILE
        if path.is_file() and self.table.running():
            return path.read_text().strip() or None
        return None

    def plan(self) -> Plan:
        """The platform as var/ holds it now (read, never written)."""
        return Plan(
            layout=self.layout,
            run_file=self.run_file,
            profile=self.profile,
            ports=self.ports,
            bin_dir=self._bin,
            secrets=devsecrets.read(self.layout),
            sampling=trace_sampling(os.environ),
            limits=EdgeLimits.from_env(),
        )

    def tiers(self, only: Sequence[str] | None = None) -> list[list[Managed]]:
        return self.plan().tiers(only)

    def managed(self, name: str) -> Managed:
        return self.plan().managed(name)

    def sidecar(self, app: AppSpec) -> Managed:
        return self.plan().sidecar(app)

    def app(self, app: AppSpec) -> Managed:
        return self.plan().app(app)

    def ops_console(self) -> Managed:
        return self.plan().ops_console()

    def prepare(self) -> None:
        """The dev secrets and certificates every process needs, made if missing."""
        app_ids = [a.app_id for a in self.run_file.apps]
        if devsecrets.ensure_all(self.layout, app_ids):
            self._say("generated Sentry issuer certificates in var/certs")

    # ---------------------------------------------------------------- preflight
    def preflight(self, tiers: list[list[Managed]]) -> None:
        broker = "java" if self.profile == KAFKA_PROFILE else "redis-server"
        for name in ("nginx", "prometheus", broker):
            if not Path(program(name)).is_file():
                raise LauncherError(f"{name} is not installed; run `make bootstrap`")
        missing = [name for name in DAPR_BINARIES if not (self._bin / name).is_file()]
        if missing:
            raise LauncherError(
                f"Dapr runtime binaries missing in {self._bin}: {', '.join(missing)};"
                " run `make bootstrap`"
            )
        if not self.layout.components(self.profile).is_dir():
            raise LauncherError(
                f"profile {self.profile!r} has no components folder"
                f" ({self.layout.components(self.profile)})"
            )
        ours = {
            what: port
            for managed in (m for tier in tiers for m in tier)
            if self.table.get(managed.spec.name) is None  # not ours already running
            for what, port in managed.ports.items()
        }
        port_reservation.reserve(ours.values(), self._say)
        transient = port_reservation.transient_holders(p for p in ours.values() if port_in_use(p))
        if transient:
            self._say(f"waiting for passing connections to free ports {sorted(transient)} ...")
            wait_until(
                lambda: not any(port_in_use(p) for p in transient),
                timeout=75.0,
                alive=lambda: True,
            )
        busy = [f"{what} ({port})" for what, port in ours.items() if port_in_use(port)]
        if busy:
            raise LauncherError(
                "ports already in use by another process: "
                + ", ".join(busy)
                + "; stop whatever holds them (or `make down` if it is an old KAYA787 run)"
            )

    # ---------------------------------------------------------------- lifecycle
    def up(self, timeout: float = 90.0, only: Sequence[str] | None = None) -> None:
        running = self._running_profile()
        if running and running != self.profile:
            raise LauncherError(
                f"the platform is running with profile {running!r}; `make down` first"
            )
        self.prepare()
        tiers = self.tiers(only)
        self.preflight(tiers)
        (self.layout.run / PROFILE_FILE).write_text(self.profile)
        started = time.monotonic()
        try:
            for tier in tiers:
                for managed in tier:
                    self.start_process(managed)
                for managed in tier:
                    self.await_ready(managed, timeout)
        except BaseException:
            self.down(quiet=True)
            raise
        self._say(f"platform up (profile {self.profile}) in {time.monotonic() - started:.1f}s")

    def start_process(self, managed: Managed) -> None:
        """Its prepare step (files it needs), unless it runs already; then start it."""
        if managed.prepare is not None and self.table.get(managed.spec.name) is None:
            managed.prepare()
        self.table.start(managed.spec)

    def await_ready(self, managed: Managed, timeout: float) -> None:
        name = managed.spec.name

        def alive() -> bool:
            return self.table.get(name) is not None

        self._say(f"  waiting for {name} ...")
        if not wait_until(managed.probe, timeout, alive):
            state = "exited" if not alive() else f"not ready after {timeout:.0f}s"
            log = self.table.log_path(name)
            raise LauncherError(f"{name} {state}; last lines of {log}:\n{self.table.tail(name)}")

    def run(self, managed: list[Managed], timeout: float) -> None:
        """Start these together (a sidecar and its app wait for each other), then wait;
        the dev secrets are made first if missing, as by `up`."""
        self.prepare()
        for one in managed:
            self.start_process(one)
        for one in managed:
            self.await_ready(one, timeout)

    def down(self, *, quiet: bool = False) -> list[str]:
        """Stop tier by tier, last first; within a tier the apps first (they drain while
        their sidecars still serve them), all of a kind at once."""
        stopped = []
        steps: list[list[str]] = []
        for tier in reversed(self._tiers_for_down()):
            names = [m.spec.name for m in tier]
            apps = [n for n in names if n.startswith("app-")]
            steps += [apps, [n for n in names if n not in apps]]
        known = {name for step in steps for name in step}
        # Anything else we have a pid file for (an older layout, a successor) goes too.
        steps.append([t.name for t in self.table.running() if t.name not in known])
        for step in steps:
            for name in self.table.stop_many(step, grace=APP_STOP_GRACE):
                stopped.append(name)
                if not quiet:
                    self._say(f"  stopped {name}")
        self.table.forget_stale()
        (self.layout.run / PROFILE_FILE).unlink(missing_ok=True)
        return stopped

    def _tiers_for_down(self) -> list[list[Managed]]:
        try:
            return self.tiers()
        except (LauncherError, OSError):
            return []

    # ------------------------------------------------- single-app fault control
    def stop_app(self, app_id: str, *, kill: bool = False) -> None:
        self.table.stop(f"app-{self.run_file.app(app_id).app_id}", kill=kill, grace=APP_STOP_GRACE)

    def stop_sidecar(self, app_id: str, *, kill: bool = False) -> None:
        self.table.stop(f"daprd-{self.run_file.app(app_id).app_id}", kill=kill, grace=5.0)

    def start_app(self, app_id: str, timeout: float = 60.0) -> None:
        self.run([self.app(self.run_file.app(app_id))], timeout)

    def start_sidecar(self, app_id: str, timeout: float = 60.0) -> None:
        self.run([self.sidecar(self.run_file.app(app_id))], timeout)

    def stop_service(self, name: str, *, kill: bool = False) -> None:
        """Stop one infrastructure process (e.g. `kafka`) for a fault test."""
        self.table.stop(self.managed(name).spec.name, kill=kill, grace=10.0)

    def start_service(self, name: str, timeout: float = 90.0) -> None:
        self.run([self.managed(name)], timeout)

    def restart_app(self, app_id: str, *, kill: bool = False) -> None:
        self.stop_app(app_id, kill=kill)
        self.start_app(app_id)

    def roll_app(self, app_id: str, timeout: float = 60.0) -> None:
        """Replace an app's process with no moment where nothing serves its port: start the
        new one beside it (both bind the port with SO_REUSEPORT, kit.shutdown), wait until
        the new one listens - it listens only once its lifespan has started, and from then
        on it gets every new connection - then SIGTERM the old one, which drains and exits.
        The sidecar stays up and keeps its app channel on the same port throughout."""
        app = self.run_file.app(app_id)
        managed = self.app(app)
        name, port = managed.spec.name, app.app_port
        if self.table.get(name) is None:
            self.start_app(app_id, timeout)  # nothing to replace
            return
        successor = name + SUCCESSOR
        self.table.stop(successor, kill=True)  # left by an interrupted roll
        self.prepare()
        new = self.table.start(managed.spec, slot=successor)
        self._say(f"  waiting for the new {name} (pid {new.pid}) to listen on {port} ...")
        if port is None or not wait_until(lambda: listens_on(new.pid, port), timeout, new.alive):
            state = "exited" if not new.alive() else f"not listening after {timeout:.0f}s"
            self.table.stop(successor, grace=APP_STOP_GRACE)
            raise LauncherError(
                f"the new {name} {state}; the old one still serves; last lines of"
                f" {self.table.log_path(name)}:\n{self.table.tail(name)}"
            )
        self._say(f"  stopping the old {name} (it drains first) ...")
        self.table.stop(name, grace=APP_STOP_GRACE)
        self.table.rename(successor, name)

    def restart_sidecar(self, app_id: str, *, kill: bool = False) -> None:
        self.stop_sidecar(app_id, kill=kill)
        self.start_sidecar(app_id)

    # ------------------------------------------------------------------- status
    def is_up(self) -> bool:
        return all(
            self.table.get(m.spec.name) is not None and m.probe()
            for tier in self.tiers()
            for m in tier
        )

    def status(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for tier in self.tiers():
            for managed in tier:
                tracked = self.table.get(managed.spec.name)
                rows.append(
                    {
                        "name": managed.spec.name,
                        "pid": tracked.pid if tracked else None,
                        "state": ("ready" if managed.probe() else "starting")
                        if tracked
                        else "stopped",
                        "ports": managed.ports,
                        "log": str(self.table.log_path(managed.spec.name)),
                    }
                )
        return rows

    def app_environment(self, app_id: str) -> dict[str, str]:
        """The environment the launcher gives an app, to run it by hand against its sidecar."""
        self.prepare()  # the app's tokens, as `up` would make them
        return dict(self.app(self.run_file.app(app_id)).spec.env)

    def tokens_for(self, app_id: str) -> dict[str, str]:
        """An app's token pair as var/secrets holds it (made by `up` or `kaya787 secrets`)."""
        tokens = devsecrets.read(self.layout).tokens.get(self.run_file.app(app_id).app_id)
        if not tokens:
            raise LauncherError(
                f"no tokens for {app_id} in {self.layout.secrets}; run `make up` first"
            )
        return dict(tokens)
