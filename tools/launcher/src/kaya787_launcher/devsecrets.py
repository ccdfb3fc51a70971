"""Development secrets and the Sentry issuer certificates, generated once into var/.

Nothing here is ever committed: var/ is git-ignored and every file is created 0600.
Existing files are kept, so re-running is safe and tokens stay stable between runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaya787_launcher.paths import Layout
from kaya787_launcher.postgres import POSTGRES_DB, POSTGRES_PORT, POSTGRES_USER
from kaya787_launcher.topology import LOOPBACK

TRUST_DOMAIN = "localhost"
CA_VALIDITY = dt.timedelta(days=365)
ROOT_CERT = "ca.crt"
ISSUER_CERT = "issuer.crt"
ISSUER_KEY = "issuer.key"
TOKENS_FILE = "tokens.json"
SECRETS_FILE = "secrets.json"
CLI_ENV_FILE = "dapr-cli.env"
CLIENTS_FILE = "clients.json"
STAFF_FILE = "staff.json"
# The dev operator of the sign-in page (authorization code + PKCE): may read the ops console
# and the analytics dashboard. Its password is generated into var/secrets/staff.json.
STAFF = {"ops@kaya787.dev": ["ops:read", "analytics:read", "profile"]}


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _token() -> str:
    return secrets.token_urlsafe(32)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def ensure_certificates(layout: Layout) -> bool:
    """A root CA and an issuer CA for Sentry; returns True when it created them."""
    certs = layout.certs
    if all((certs / name).is_file() for name in (ROOT_CERT, ISSUER_CERT, ISSUER_KEY)):
        return False
    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN)])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=15))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .sign(root_key, hashes.SHA256())
    )
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, f"spiffe://{TRUST_DOMAIN}/ns/default/dapr-sentry"
            )
        ]
    )
    issuer = (
        x509.CertificateBuilder()
        .subject_name(issuer_name)
        .issuer_name(root_name)
        .public_key(issuer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=15))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(certs / ROOT_CERT, root.public_bytes(pem))
    _write_private(certs / ISSUER_CERT, issuer.public_bytes(pem))
    _write_private(
        certs / ISSUER_KEY,
        issuer_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return True


def ensure_tokens(layout: Layout, app_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """One DAPR_API_TOKEN / APP_API_TOKEN pair per app, so one leaked token opens one app."""
    path = layout.secrets / TOKENS_FILE
    tokens: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.is_file() else {}
    changed = False
    for app_id in app_ids:
        if app_id not in tokens:
            tokens[app_id] = {"dapr_api_token": _token(), "app_api_token": _token()}
            changed = True
    if "dapr-cli" not in tokens:
        tokens["dapr-cli"] = {"dapr_api_token": _token(), "app_api_token": _token()}
        changed = True
    if changed:
        _write_private(path, json.dumps(tokens, indent=2).encode())
        shared = tokens["dapr-cli"]
        # `dapr run -f` gives every sidecar the CLI's own environment, so it shares one pair.
        _write_private(
            layout.secrets / CLI_ENV_FILE,
            (
                f"DAPR_API_TOKEN={shared['dapr_api_token']}\n"
                f"APP_API_TOKEN={shared['app_api_token']}\n"
            ).encode(),
        )
    return tokens


SIGNING_KEY_COUNT = 3
# Service clients of identity's client_credentials grant: id -> scopes.
SERVICE_CLIENTS = {
    "kaya787-ops": ["identity:admin"],
    # Reporting jobs (and the tests) read platform-wide analytics; customers cannot.
    "kaya787-reporting": ["analytics:read"],
}


def _signing_keys() -> str:
    """Identity's EC P-256 signing keys as JSON {kid: PEM}; rotation walks them in order."""
    keys = {}
    for _ in range(SIGNING_KEY_COUNT):
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        keys[f"dev-{secrets.token_hex(6)}"] = pem.decode()
    return json.dumps(keys)


def _hashed(layout: Layout, file: str, members: dict[str, list[str]], hash_field: str) -> str:
    """Argon2 hashes and scopes of `members` for the secret store; their plain secrets go
    to var/secrets/`file` only (git-ignored, mode 600)."""
    hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
    plain = {name: _token() for name in members}
    _write_private(layout.secrets / file, json.dumps(plain, indent=2).encode())
    return json.dumps(
        {
            name: {hash_field: hasher.hash(plain[name]), "scopes": scopes}
            for name, scopes in members.items()
        }
    )


def _holds_all(layout: Layout, file: str, members: Mapping[str, object]) -> bool:
    try:
        held = json.loads((layout.secrets / file).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(held, dict) and set(members) <= set(held)


def _service_clients(layout: Layout) -> str:
    return _hashed(layout, CLIENTS_FILE, SERVICE_CLIENTS, "secret_hash")


def _staff(layout: Layout) -> str:
    return _hashed(layout, STAFF_FILE, STAFF, "password_hash")


def postgres_connection_string(password: str) -> str:
    """What the kafka profile's state stores connect with (libpq keyword/value form)."""
    return (
        f"host={LOOPBACK} port={POSTGRES_PORT} user={POSTGRES_USER} password={password}"
        f" dbname={POSTGRES_DB} sslmode=disable connect_timeout=10"
    )


def ensure_secret_store(layout: Layout) -> dict[str, str]:
    """The local-file secret store: the secrets components and apps read through Dapr."""
    path = layout.secrets / SECRETS_FILE
    values: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    wanted: dict[str, Callable[[], str]] = {
        "redis-password": _token,
        "postgres-password": _token,
        "identity-signing-keys": _signing_keys,
        "identity-clients": lambda: _service_clients(layout),
        "identity-staff": lambda: _staff(layout),
    }
    # Plain secrets lost, or made before a client or staff member was added (a var/ from an
    # older checkout): issue the whole set again.
    if not _holds_all(layout, CLIENTS_FILE, SERVICE_CLIENTS):
        values.pop("identity-clients", None)
    if not _holds_all(layout, STAFF_FILE, STAFF):
        values.pop("identity-staff", None)
    changed = False
    for name, make in wanted.items():
        if name not in values:
            values[name] = make()
            changed = True
    # Derived, so it always follows the password (also when only the password was reset).
    connection = postgres_connection_string(values["postgres-password"])
    if values.get("postgres-connection-string") != connection:
        values["postgres-connection-string"] = connection
        changed = True
    if changed:
        _write_private(path, json.dumps(values, indent=2).encode())
    return values


def trust_anchors(layout: Layout) -> str:
    return (layout.certs / ROOT_CERT).read_text()


@dataclass(frozen=True)
class DevSecrets:
    """What the process builders need from var/, read as it is: never generated here, so
    planning (`status`, `down`, `list`) writes nothing. Missing values read as ""."""

    tokens: dict[str, dict[str, str]]
    store: dict[str, str]
    trust_anchors: str

    def token(self, app_id: str, kind: str) -> str:
        return self.tokens.get(app_id, {}).get(kind, "")

    def secret(self, name: str) -> str:
        return self.store.get(name, "")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read(layout: Layout) -> DevSecrets:
    try:
        anchors = trust_anchors(layout)
    except OSError:
        anchors = ""
    return DevSecrets(
        tokens=_read_json(layout.secrets / TOKENS_FILE),
        store=_read_json(layout.secrets / SECRETS_FILE),
        trust_anchors=anchors,
    )


def ensure_all(layout: Layout, app_ids: Iterable[str]) -> bool:
    """Every dev secret `up` needs; True when the Sentry certificates were created now."""
    layout.ensure()
    created = ensure_certificates(layout)
    ensure_tokens(layout, app_ids)
    ensure_secret_store(layout)
    return created
