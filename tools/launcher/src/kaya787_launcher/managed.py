"""One process the launcher manages: how to start it and how to know it is ready."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from kaya787_launcher.processes import ProcessSpec


@dataclass(frozen=True)
class Managed:
    spec: ProcessSpec
    probe: Callable[[], bool]
    ports: dict[str, int]
    url: str = ""
    # One-time set-up before the first start (format Kafka's storage, initdb): run by `up`
    # only, never by status or down.
    prepare: Callable[[], None] | None = None


def program(name: str) -> str:
    """A Debian program's path, also when /usr/sbin is not on PATH (nginx, postgres)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") or name
