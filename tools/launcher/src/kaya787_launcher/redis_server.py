"""Redis for the `local` profile (state of identity and partner, Redis Streams pub/sub).

A pure builder: the password comes in as an argument; redis.conf (0600, it holds the
password) and the data folder are written by the prepare step that `up`/`start` run.
"""

from __future__ import annotations

from pathlib import Path

from kaya787_launcher.files import write_if_changed
from kaya787_launcher.managed import Managed, program
from kaya787_launcher.paths import Layout
from kaya787_launcher.probes import redis_ok
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK


def config_path(layout: Layout) -> Path:
    return layout.run / "redis.conf"


def data_dir(layout: Layout) -> Path:
    return layout.data / "redis"


def config(layout: Layout, port: int, password: str) -> str:
    return (
        f"bind {LOOPBACK}\nport {port}\nprotected-mode yes\ndaemonize no\n"
        f'dir {data_dir(layout)}\nappendonly yes\nsave ""\nlogfile ""\n'
        f"requirepass {password}\n"
    )


def redis(layout: Layout, port: int, password: str) -> Managed:
    path = config_path(layout)

    def write_config() -> None:
        data_dir(layout).mkdir(parents=True, exist_ok=True)
        write_if_changed(path, config(layout, port, password), 0o600)

    return Managed(
        ProcessSpec("redis", [program("redis-server"), str(path)], layout.root),
        redis_ok(port, password),
        {"redis": port},
        prepare=write_config,
    )
