"""Development secrets and the Sentry issuer certificates, generated once into var/.

Nothing here is ever committed: var/ is git-ignored and every file is created 0600.
Existing files are kept, so re-running is safe and tokens stay stable between runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaya787_launcher.paths import Layout

TRUST_DOMAIN = "localhost"
CA_VALIDITY = dt.timedelta(days=365)
ROOT_CERT = "ca.crt"
ISSUER_CERT = "issuer.crt"
ISSUER_KEY = "issuer.key"
TOKENS_FILE = "tokens.json"
SECRETS_FILE = "secrets.json"
CLI_ENV_FILE = "dapr-cli.env"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _token() -> str:
    return secrets.token_urlsafe(32)


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
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
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
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
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


def ensure_secret_store(layout: Layout) -> dict[str, str]:
    """The local-file secret store: the secrets components and apps read through Dapr."""
    path = layout.secrets / SECRETS_FILE
    values: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    wanted = {"redis-password": _token, "postgres-password": _token}
    changed = False
    for name, make in wanted.items():
        if name not in values:
            values[name] = make()
            changed = True
    if changed:
        _write_private(path, json.dumps(values, indent=2).encode())
    return values


def trust_anchors(layout: Layout) -> str:
    return (layout.certs / ROOT_CERT).read_text()
