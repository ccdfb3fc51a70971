"""PostgreSQL 15 (Debian's) for the `kafka` profile: every app's state store.

It binds 127.0.0.1 only and keeps its cluster under var/data/postgres. `postgres()` only
describes the process; its prepare step (initdb once, the role's password and pg_hba.conf
kept in step with the secret store), idempotent, rides along as `Managed.prepare`, which
`up` runs before the start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from kaya787_launcher.files import write_if_changed
from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK

POSTGRES_PORT = 5433
POSTGRES_USER = "kaya787"
POSTGRES_DB = "kaya787"
# The Debian package pinned in tools/versions.env (postgresql-15).
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# PostgreSQL refuses to run as root; as root we run it as the package's system user.
POSTGRES_SYSTEM_USER = "postgres"


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
    "# Written by the KAYA787 launcher (postgres.py): SCRAM password logins, loopback only.\n"
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
        write_if_changed(marker, fingerprint, 0o600)
    elif _password_changed(marker, fingerprint) and not _server_running(data):
        # Single-user mode needs the server down; a running one gets it at its next start.
        _single_user(data, f"ALTER ROLE {POSTGRES_USER} PASSWORD '{scram_verifier(password)}';\n")
        write_if_changed(marker, fingerprint, 0o600)
    hba = data / "pg_hba.conf"
    if not hba.is_file() or hba.read_text() != PG_HBA:
        write_if_changed(hba, PG_HBA, 0o600)
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
