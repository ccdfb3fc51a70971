"""Kafka 4 (KRaft, one combined broker + controller node) for the `kafka` profile.

It binds 127.0.0.1 only and keeps its data under var/data/kafka. `kafka()` only describes
the process, so `down` and `status` can build it without touching anything; its prepare
step (server.properties, formatting the storage once), idempotent, rides along as
`Managed.prepare`, which `up` runs before the start.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from kaya787_launcher.files import write_if_changed
from kaya787_launcher.kafka_wire import kafka_ok
from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK

KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
KAFKA_NODE_ID = 1
# More than one partition, so a message's partition key decides where it lands (and its
# order relative to others with the same key) locally too, as on a cluster.
KAFKA_PARTITIONS = 3

_VERSIONS_FILE = Path("tools") / "versions.env"
_LOG4J_CONFIG = Path("tools") / "kafka" / "log4j2.properties"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_KAFKA_MAIN = "kafka.Kafka"


def kafka_version(layout: Layout) -> str:
    path = layout.root / _VERSIONS_FILE
    match = re.search(r"^KAFKA_VERSION=([0-9][0-9A-Za-z.\-]*)\s*$", path.read_text(), re.M)
    if match is None:
        raise LauncherError(f"KAFKA_VERSION is not pinned in {path}")
    return match.group(1)


def kafka_libs(layout: Layout) -> Path:
    """Where tools/fetch-kafka.sh puts the broker's jars (keep the two in step)."""
    cache = os.environ.get("KAYA787_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kaya787"
    )
    return Path(cache) / f"kafka-{kafka_version(layout)}" / "libs"


def _kafka_run(layout: Layout) -> Path:
    return layout.run / "kafka"


def _kafka_data(layout: Layout) -> Path:
    return layout.data / "kafka"


def _server_properties_path(layout: Layout) -> Path:
    return _kafka_run(layout) / "server.properties"


def server_properties(layout: Layout) -> str:
    """One combined broker + controller node; every listener on loopback."""
    data = _kafka_data(layout)
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(KAFKA_NODE_ID),
        # A dynamic quorum of one, formatted with --standalone.
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{KAFKA_CONTROLLER_PORT}",
        "listeners": (
            f"PLAINTEXT://{LOOPBACK}:{KAFKA_PORT},CONTROLLER://{LOOPBACK}:{KAFKA_CONTROLLER_PORT}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://{LOOPBACK}:{KAFKA_PORT},CONTROLLER://{LOOPBACK}:{KAFKA_CONTROLLER_PORT}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data),
        # Topics appear on first publish or subscribe, as with Redis Streams locally.
        "auto.create.topics.enable": "true",
        "num.partitions": str(KAFKA_PARTITIONS),
        # One node: every internal topic has one replica.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # A handful of consumer groups: 50 offset partitions only slow the first join.
        "offsets.topic.num.partitions": "3",
        # Nobody else is coming: a group starts consuming as soon as its member joins.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    lines = ["# Written by the KAYA787 launcher (kafka_broker.py) at every start; edits are lost."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def _java_command(layout: Layout, main: str) -> list[str]:
    return [
        _java(),
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        # Plain IPv4 sockets: the listeners show as 127.0.0.1, not as ::ffff:127.0.0.1.
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j2.configurationFile={layout.root / _LOG4J_CONFIG}",
        "-cp",
        # The JVM expands a trailing /* to every jar in the folder.
        f"{kafka_libs(layout)}/*",
        main,
    ]


def new_cluster_id() -> str:
    """A Kafka Uuid: 16 random bytes, base64url without padding (22 characters)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # as Kafka's Uuid.randomUuid: no leading '-' on a CLI
            return text


def is_formatted(layout: Layout) -> bool:
    return (_kafka_data(layout) / "meta.properties").is_file()


def prepare_kafka(layout: Layout) -> None:
    """Write server.properties; format the storage once (a formatted folder is kept)."""
    version = kafka_version(layout)
    libs = kafka_libs(layout)
    if not (libs / f"kafka_2.13-{version}.jar").is_file():
        raise LauncherError(f"Kafka {version} jars are missing in {libs}; run `make bootstrap`")
    if shutil.which(_java()) is None:
        raise LauncherError("java is not installed (Kafka needs Java 17+); run `make bootstrap`")
    layout.ensure()
    props = _server_properties_path(layout)
    write_if_changed(props, server_properties(layout))
    if is_formatted(layout):
        return
    _kafka_data(layout).mkdir(parents=True, exist_ok=True)
    argv = [
        *_java_command(layout, _STORAGE_TOOL),
        "format",
        "--cluster-id",
        new_cluster_id(),
        "--config",
        str(props),
        "--standalone",
        "--ignore-formatted",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not is_formatted(layout):
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise LauncherError(f"formatting Kafka storage in {_kafka_data(layout)} failed:\n{output}")


def kafka(layout: Layout) -> Managed:
    argv = [*_java_command(layout, _KAFKA_MAIN), str(_server_properties_path(layout))]
    return Managed(
        ProcessSpec("kafka", argv, layout.root),
        kafka_ok(KAFKA_PORT, KAFKA_NODE_ID),
        {"kafka": KAFKA_PORT, "kafka controller": KAFKA_CONTROLLER_PORT},
        prepare=lambda: prepare_kafka(layout),
    )
