"""Kafka and PostgreSQL process descriptions: loopback only, prepare steps that run once,
probes that need a real answer, and no plain password handed to PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kaya787_launcher import kafka_broker, kafka_wire, postgres
from kaya787_launcher.paths import LauncherError, Layout

from tests.support.platform import ROOT


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """A layout whose tools/ is the repository's and whose jar cache is empty."""
    root = tmp_path / "root"
    (root / "tools" / "kafka").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "versions.env", root / "tools" / "versions.env")
    shutil.copy(ROOT / "tools" / "kafka" / "log4j2.properties", root / "tools" / "kafka")
    monkeypatch.setenv("KAYA787_CACHE_DIR", str(tmp_path / "cache"))
    return Layout(root)


def _fake_jars(layout: Layout) -> None:
    libs = kafka_broker.kafka_libs(layout)
    libs.mkdir(parents=True)
    (libs / f"kafka_2.13-{kafka_broker.kafka_version(layout)}.jar").write_bytes(b"")


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


class Recorder:
    def __init__(self, effect: Callable[[list[str]], None] = lambda argv: None, rc: int = 0):
        self.calls: list[tuple[list[str], Any]] = []
        self._effect = effect
        self._rc = rc

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), kwargs.get("input")))
        self._effect(list(argv))
        return subprocess.CompletedProcess(argv, self._rc, "out", "err")


# ------------------------------------------------------------------------------ Kafka config


def test_kafka_version_is_pinned(layout: Layout) -> None:
    assert kafka_broker.kafka_version(layout).startswith("4.")


def test_every_listener_is_on_loopback(layout: Layout) -> None:
    props = _properties(kafka_broker.server_properties(layout))
    for key in ("listeners", "advertised.listeners"):
        for listener in props[key].split(","):
            name, address = listener.split("://")
            host, port = address.rsplit(":", 1)
            assert host == "127.0.0.1", listener
            expected = (
                kafka_broker.KAFKA_CONTROLLER_PORT
                if name == "CONTROLLER"
                else kafka_broker.KAFKA_PORT
            )
            assert int(port) == expected
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"


def test_single_node_settings(layout: Layout) -> None:
    props = _properties(kafka_broker.server_properties(layout))
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "true"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
    ):
        assert props[key] == "1", key
    # Keys must matter locally too: more than one partition per topic.
    assert int(props["num.partitions"]) > 1
    assert Path(props["log.dirs"]).is_relative_to(layout.data)


def test_kafka_process_runs_the_broker_from_the_cached_jars(layout: Layout) -> None:
    managed = kafka_broker.kafka(layout)
    argv = list(managed.spec.argv)
    assert argv[-2:] == ["kafka.Kafka", str(layout.run / "kafka" / "server.properties")]
    assert argv[argv.index("-cp") + 1] == f"{kafka_broker.kafka_libs(layout)}/*"
    log4j = next(a for a in argv if a.startswith("-Dlog4j2.configurationFile="))
    assert Path(log4j.split("=", 1)[1]).is_file()
    assert managed.ports == {"kafka": 9092, "kafka controller": 9093}
    # `up` prepares it first: with the jar cache empty, that says what to do.
    assert managed.prepare is not None
    with pytest.raises(LauncherError, match="make bootstrap"):
        managed.prepare()


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {kafka_broker.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# ---------------------------------------------------------------------------- Kafka prepare


def test_prepare_refuses_without_the_jars(layout: Layout) -> None:
    with pytest.raises(LauncherError, match="make bootstrap"):
        kafka_broker.prepare_kafka(layout)


def test_storage_is_formatted_once(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_jars(layout)

    def format_storage(argv: list[str]) -> None:
        (layout.data / "kafka" / "meta.properties").write_text("version=1\n")

    recorder = Recorder(format_storage)
    monkeypatch.setattr(subprocess, "run", recorder)
    kafka_broker.prepare_kafka(layout)
    kafka_broker.prepare_kafka(layout)
    assert len(recorder.calls) == 1
    argv = recorder.calls[0][0]
    main = argv.index("-cp") + 2
    assert argv[main : main + 2] == ["kafka.tools.StorageTool", "format"]
    assert {"--standalone", "--ignore-formatted"} <= set(argv)
    assert len(argv[argv.index("--cluster-id") + 1]) == 22
    written = (layout.run / "kafka" / "server.properties").read_text()
    assert written == kafka_broker.server_properties(layout)


def test_a_failed_format_is_reported(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_jars(layout)
    monkeypatch.setattr(subprocess, "run", Recorder(rc=1))
    with pytest.raises(LauncherError, match="formatting Kafka storage"):
        kafka_broker.prepare_kafka(layout)
    assert not kafka_broker.is_formatted(layout)


# ------------------------------------------------------------------------------ Kafka probe


def _metadata_response(correlation_id: int, brokers_: list[tuple[int, str, int]]) -> bytes:
    body = struct.pack(">ii", correlation_id, 0) + struct.pack(">i", len(brokers_))
    for node, host, port in brokers_:
        body += struct.pack(">ih", node, len(host)) + host.encode() + struct.pack(">ih", port, -1)
    cluster = b"abc"
    body += struct.pack(">h", len(cluster)) + cluster + struct.pack(">ii", 1, 0)
    return body


def test_metadata_request_is_a_framed_v4_request() -> None:
    request = kafka_wire.metadata_request(42)
    (size,) = struct.unpack(">i", request[:4])
    assert size == len(request) - 4
    assert struct.unpack(">hhi", request[4:12]) == (3, 4, 42)


def test_metadata_response_parsing() -> None:
    payload = _metadata_response(7, [(1, "127.0.0.1", 9092), (2, "127.0.0.1", 9094)])
    assert kafka_wire.parse_metadata_brokers(payload, 7) == [
        (1, "127.0.0.1", 9092),
        (2, "127.0.0.1", 9094),
    ]
    with pytest.raises(ValueError, match="not to our request"):
        kafka_wire.parse_metadata_brokers(payload, 8)
    with pytest.raises(struct.error):
        kafka_wire.parse_metadata_brokers(payload[:20], 7)


@pytest.fixture
def fake_broker() -> Iterator[Callable[[list[tuple[int, str, int]] | None], int]]:
    """A one-shot TCP server answering Metadata with the given brokers (None: hang up)."""
    servers: list[socket.socket] = []

    def start(listed: list[tuple[int, str, int]] | None) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)
        port: int = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                (size,) = struct.unpack(">i", conn.recv(4))
                request = b""
                while len(request) < size:
                    request += conn.recv(size)
                if listed is None:
                    return
                (correlation_id,) = struct.unpack(">i", request[4:8])
                entries = [(n, h, port if p == 0 else p) for n, h, p in listed]
                answer = _metadata_response(correlation_id, entries)
                conn.sendall(struct.pack(">i", len(answer)) + answer)

        threading.Thread(target=serve, daemon=True).start()
        return port

    yield start
    for server in servers:
        server.close()


def test_probe_passes_when_the_broker_lists_itself(
    fake_broker: Callable[[list[tuple[int, str, int]] | None], int],
) -> None:
    port = fake_broker([(1, "127.0.0.1", 0)])  # 0: the fake's own port
    assert kafka_wire.kafka_ok(port, 1)() is True


def test_probe_fails_while_the_broker_is_not_registered(
    fake_broker: Callable[[list[tuple[int, str, int]] | None], int],
) -> None:
    assert kafka_wire.kafka_ok(fake_broker([]), 1)() is False
    assert kafka_wire.kafka_ok(fake_broker([(2, "127.0.0.1", 0)]), 1)() is False
    assert kafka_wire.kafka_ok(fake_broker(None), 1)() is False


def test_probe_fails_when_nothing_listens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    assert kafka_wire.kafka_ok(port, 1)() is False


# --------------------------------------------------------------------------------- Postgres


def test_scram_verifier_matches_rfc_7677() -> None:
    # RFC 7677 section 3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = postgres.scram_verifier("pencil", salt=salt, iterations=4096)
    head, keys = verifier.split("$", 2)[1:]
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    assert head == f"4096:{base64.b64encode(salt).decode()}"
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = hmac.digest(server_key, auth_message, "sha256")
    assert base64.b64encode(signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.digest(stored_key, auth_message, "sha256")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert postgres.scram_verifier("pencil") != postgres.scram_verifier("pencil")  # fresh salt


def test_postgres_listens_on_loopback_only(layout: Layout) -> None:
    argv = list(postgres.postgres(layout, "a-password").spec.argv)
    settings = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-c")
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == str(postgres.POSTGRES_PORT) == "5433"
    assert settings["unix_socket_directories"] == str(layout.run / "postgres")


def test_hba_allows_only_scram_from_loopback() -> None:
    rules = [line.split() for line in postgres.PG_HBA.splitlines() if line and line[0] != "#"]
    assert rules
    assert all(rule[-1] == "scram-sha-256" for rule in rules)
    assert [rule[3] for rule in rules if rule[0] == "host"] == ["127.0.0.1/32"]
    assert "trust" not in postgres.PG_HBA
    assert "md5" not in postgres.PG_HBA


@pytest.mark.parametrize(("euid", "wrapped"), [(0, True), (1000, False)])
def test_postgres_drops_root(
    layout: Layout, monkeypatch: pytest.MonkeyPatch, euid: int, wrapped: bool
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    argv = list(postgres.postgres(layout, "a-password").spec.argv)
    assert (argv[0] == "setpriv") is wrapped
    if wrapped:
        assert "--reuid=postgres" in argv
        assert argv[argv.index("--") + 1].endswith("/postgres")


@pytest.fixture
def initialised(layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """An existing cluster (PG_VERSION present), not running, as a non-root user."""
    binaries = tmp_path / "pgbin"
    binaries.mkdir()
    (binaries / "postgres").write_text("")
    monkeypatch.setattr(postgres, "POSTGRES_BIN", binaries)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    data = layout.data / "postgres"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    return layout


@pytest.fixture
def applied(initialised: Layout, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The cluster prepared once with "first-password"; what ran is recorded."""
    recorder = Recorder()
    monkeypatch.setattr(subprocess, "run", recorder)
    postgres.prepare_postgres(initialised, "first-password")
    return recorder


def test_prepare_postgres_twice_changes_nothing(initialised: Layout, applied: Recorder) -> None:
    recorder = applied
    calls = len(recorder.calls)
    postgres.prepare_postgres(initialised, "first-password")
    assert len(recorder.calls) == calls
    assert (initialised.data / "postgres" / "pg_hba.conf").read_text() == postgres.PG_HBA


def test_a_new_password_reaches_the_role_without_its_plain_text(
    initialised: Layout, applied: Recorder
) -> None:
    recorder = applied
    recorder.calls.clear()
    postgres.prepare_postgres(initialised, "second-password")
    assert len(recorder.calls) == 1
    argv, sql = recorder.calls[0]
    assert "--single" in argv
    assert sql.startswith("ALTER ROLE kaya787 PASSWORD 'SCRAM-SHA-256$4096:")
    assert "second-password" not in sql
    marker = initialised.data / "postgres-password.sha256"
    assert marker.stat().st_mode & 0o077 == 0


def test_a_failed_setup_statement_is_reported(
    initialised: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, "", "ERROR:  role does not exist")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(LauncherError, match="role does not exist"):
        postgres.prepare_postgres(initialised, "a-password")
    # Not recorded as applied: the next start tries again.
    assert not (initialised.data / "postgres-password.sha256").exists()


def test_prepare_postgres_refuses_without_postgresql(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "POSTGRES_BIN", tmp_path / "nowhere")
    with pytest.raises(LauncherError, match="make bootstrap"):
        postgres.prepare_postgres(layout, "a-password")


def test_a_new_password_waits_for_the_server_to_stop(
    initialised: Layout, applied: Recorder
) -> None:
    recorder = applied
    recorder.calls.clear()
    pid_file = initialised.data / "postgres" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # a live pid: the server is up
    postgres.prepare_postgres(initialised, "second-password")
    assert recorder.calls == []
    pid_file.unlink()
    postgres.prepare_postgres(initialised, "second-password")
    assert len(recorder.calls) == 1
