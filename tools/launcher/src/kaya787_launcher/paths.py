"""Where the launcher finds the repository, the Dapr binaries and its own run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = Path("dapr") / "dapr.yaml"


class LauncherError(RuntimeError):
    """A problem the user can fix; printed as one line, without a traceback."""


def find_root(start: Path | None = None) -> Path:
    env = os.environ.get("KAYA787_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / RUN_FILE).is_file():
            return candidate
    raise LauncherError(f"no {RUN_FILE} found above {here}; run from the repository")


def dapr_bin_dir() -> Path:
    """`<X>/.dapr/bin`, with X from DAPR_RUNTIME_PATH or $HOME, as the Dapr CLI does."""
    base = os.environ.get("DAPR_RUNTIME_PATH") or str(Path.home())
    return Path(base) / ".dapr" / "bin"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def logs(self) -> Path:
        return self.var / "log"

    @property
    def data(self) -> Path:
        return self.var / "data"

    @property
    def secrets(self) -> Path:
        return self.var / "secrets"

    @property
    def certs(self) -> Path:
        return self.var / "certs"

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    def components(self, profile: str) -> Path:
        return self.root / "components" / profile

    def ensure(self) -> None:
        for folder in (self.run, self.pids, self.logs, self.data, self.secrets, self.certs):
            folder.mkdir(parents=True, exist_ok=True)
