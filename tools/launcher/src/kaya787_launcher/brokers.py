"""Kafka (KRaft, one node) and PostgreSQL 15 for the `kafka` profile, as managed processes.

Both bind 127.0.0.1 only and keep their data under var/data. Each builder only describes
the process, so `down` and `status` can build it without touching anything; its prepare
step (config files, Kafka's storage format, PostgreSQL's initdb), idempotent, rides along
as `Managed.prepare`, which `up` runs before the start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

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
POSTGRES_PORT = 5433
POSTGRES_USER = "kaya787"
POSTGRES_DB = "kaya787"
# The Debian package pinned in tools/versions.env (postgresql-15).
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# PostgreSQL refuses to run as root; as root we run it as the package's system user.
POSTGRES_SYSTEM_USER = "postgres"

_VERSIONS_FILE = Path("tools") / "versions.env"
_LOG4J_CONFIG = Path("tools") / "kafka" / "log4j2.properties"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_KAFKA_MAIN = "kafka.Kafka"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write only on change, so a warm start leaves timestamps (and the broker) alone."""
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# ===================================================================================== Kafka


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
    lines = ["# Written by the KAYA787 launcher (brokers.py) at every start; edits are lost."]
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
    _write(props, server_properties(layout))
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


# ================================================================================ PostgreSQL


def _postgres_data(layout: Layout) -> Path:
    return layout.data / "postgres"


def _postgres_socket_dir(layout: Layout) -> Path:
    return layout.run / "postgres"


def _password_marker(layout: Layout) -> Path:
    # A hash of the role's password, to notice that var/secrets was regenerated.
    return layout.data / "postgres-password.sha256"


def _pg(program: str) -> str:
    return str(POSTGRES_BIN / program)


def _as_postgres_owner() -> list[str]:
    """A prefix that runs a command as the data folder's owner: the `postgres` system user
    when we are root. setpriv execs in place (no extra parent process), so the pid the
    launcher tracks is postgres' own and its signals reach the postmaster directly."""
    if os.geteuid() != 0:
        return []
    return [
        "setpriv",
        f"--reuid={POSTGRES_SYSTEM_USER}",
        f"--regid={POSTGRES_SYSTEM_USER}",
        "--init-groups",
        "--",
    ]


def _chown_to_owner(path: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError as exc:
        raise LauncherError(
            f"no `{POSTGRES_SYSTEM_USER}` system user (PostgreSQL will not run as root);"
            " run `make bootstrap` to install postgresql-15"
        ) from exc
    os.chown(path, entry.pw_uid, entry.pw_gid)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores (RFC 5802/7677), so the plain password
    never reaches the server, its logs or an error message."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


PG_HBA = (
    "# Written by the KAYA787 launcher (brokers.py): password (SCRAM) logins only, loopback only.\n"
    "local all all scram-sha-256\n"
    f"host  all all {LOOPBACK}/32 scram-sha-256\n"
)


def _single_user(data: Path, sql: str) -> None:
    """Run SQL in single-user mode (no server, no network), one statement per line."""
    argv = [*_as_postgres_owner(), _pg("postgres"), "--single", "-D", str(data), "postgres"]
    result = subprocess.run(
        argv, input=sql, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 or "ERROR:" in output:
        raise LauncherError(f"PostgreSQL setup in {data} failed:\n{output.strip()[-2000:]}")


def _initdb(layout: Layout, password: str) -> None:
    data = _postgres_data(layout)
    # Into a scratch folder, renamed at the end: a half-made cluster never looks ready.
    scratch = data.with_name(data.name + ".init")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700, parents=True)
    _chown_to_owner(scratch)
    # initdb insists on a superuser password for scram; nobody needs it afterwards
    # (administration goes through single-user mode), so it is thrown away.
    pwfile = scratch.with_name(scratch.name + ".pw")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    _chown_to_owner(pwfile)
    try:
        argv = [
            *_as_postgres_owner(),
            _pg("initdb"),
            "-D",
            str(scratch),
            "--username=postgres",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-2000:]
            raise LauncherError(
                f"initdb into {scratch} failed (the {POSTGRES_SYSTEM_USER} user must be able to"
                f" reach that folder):\n{output}"
            )
    finally:
        pwfile.unlink(missing_ok=True)
    _single_user(
        scratch,
        f"CREATE ROLE {POSTGRES_USER} LOGIN PASSWORD '{scram_verifier(password)}';\n"
        f"CREATE DATABASE {POSTGRES_DB} OWNER {POSTGRES_USER};\n",
    )
    scratch.rename(data)


def _server_running(data: Path) -> bool:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{pid}").exists()


def _password_changed(marker: Path, fingerprint: str) -> bool:
    return not marker.is_file() or marker.read_text() != fingerprint


def prepare_postgres(layout: Layout, password: str) -> None:
    """initdb once (role and database `kaya787`, SCRAM auth); afterwards keep the config and
    the role's password in step with the secret store. Safe to run again."""
    if not (POSTGRES_BIN / "postgres").is_file():
        raise LauncherError(
            f"PostgreSQL 15 is not installed ({POSTGRES_BIN}); run `make bootstrap`"
        )
    layout.ensure()
    data = _postgres_data(layout)
    sockets = _postgres_socket_dir(layout)
    sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chown_to_owner(sockets)
    fingerprint = hashlib.sha256(password.encode()).hexdigest() + "\n"
    marker = _password_marker(layout)
    if not (data / "PG_VERSION").is_file():
        _initdb(layout, password)
        _write(marker, fingerprint, 0o600)
    elif _password_changed(marker, fingerprint) and not _server_running(data):
        # Single-user mode needs the server down; a running one gets it at its next start.
        _single_user(data, f"ALTER ROLE {POSTGRES_USER} PASSWORD '{scram_verifier(password)}';\n")
        _write(marker, fingerprint, 0o600)
    hba = data / "pg_hba.conf"
    if not hba.is_file() or hba.read_text() != PG_HBA:
        _write(hba, PG_HBA, 0o600)
        _chown_to_owner(hba)


def postgres_argv(layout: Layout) -> list[str]:
    # Settings on the command line win over postgresql.conf (initdb's defaults).
    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(POSTGRES_PORT),
        "unix_socket_directories": str(_postgres_socket_dir(layout)),
        "password_encryption": "scram-sha-256",
        "ssl": "off",
        "logging_collector": "off",
        "log_destination": "stderr",
        "log_timezone": "UTC",
        "max_connections": "100",
    }
    flags = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    return [*_as_postgres_owner(), _pg("postgres"), "-D", str(_postgres_data(layout)), *flags]


def pg_ready(port: int) -> Callable[[], bool]:
    """pg_isready opens a real connection: it passes only once the server accepts logins,
    not while it is still starting up or recovering."""

    def probe() -> bool:
        argv = [_pg("pg_isready"), "-q", "-h", LOOPBACK, "-p", str(port), "-d", POSTGRES_DB]
        argv += ["-U", POSTGRES_USER, "-t", "2"]
        try:
            return subprocess.run(argv, capture_output=True, timeout=5, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    return probe


def postgres(layout: Layout, password: str) -> Managed:
    """`password`: the role's, from the secret store (applied by the prepare step)."""
    return Managed(
        ProcessSpec("postgres", postgres_argv(layout), layout.root, stop_signal=signal.SIGINT),
        pg_ready(POSTGRES_PORT),
        {"postgres": POSTGRES_PORT},
        prepare=lambda: prepare_postgres(layout, password),
    )
