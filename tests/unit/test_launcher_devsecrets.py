import json
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from kaya787_launcher import devsecrets
from kaya787_launcher.paths import Layout


def test_issuer_chains_to_root_and_is_a_ca(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    assert devsecrets.ensure_certificates(layout) is True
    root = x509.load_pem_x509_certificate((layout.certs / "ca.crt").read_bytes())
    issuer = x509.load_pem_x509_certificate((layout.certs / "issuer.crt").read_bytes())
    issuer.verify_directly_issued_by(root)
    assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(issuer.public_key(), ec.EllipticCurvePublicKey)
    for name in ("ca.crt", "issuer.crt", "issuer.key"):
        assert stat.S_IMODE((layout.certs / name).stat().st_mode) == 0o600
    # A second run keeps what exists.
    assert devsecrets.ensure_certificates(layout) is False


def test_tokens_are_per_app_strong_and_stable(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    first = devsecrets.ensure_tokens(layout, ["identity", "accounts"])
    again = devsecrets.ensure_tokens(layout, ["identity", "accounts", "analytics"])
    assert again["identity"] == first["identity"]
    assert first["identity"]["dapr_api_token"] != first["accounts"]["dapr_api_token"]
    assert first["identity"]["dapr_api_token"] != first["identity"]["app_api_token"]
    assert all(len(v) >= 32 for pair in again.values() for v in pair.values())
    stored = json.loads((layout.secrets / "tokens.json").read_text())
    assert set(stored) == {"identity", "accounts", "analytics", "dapr-cli"}
    assert stat.S_IMODE((layout.secrets / "tokens.json").stat().st_mode) == 0o600


def test_service_clients_added_since_the_secrets_were_made_get_issued(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    first = devsecrets.ensure_secret_store(layout)
    clients = layout.secrets / devsecrets.CLIENTS_FILE
    plain = json.loads(clients.read_text())
    assert set(plain) == set(devsecrets.SERVICE_CLIENTS)
    # A var/ from before the newest client existed: its plain secret is not there.
    newest = sorted(plain)[-1]
    clients.write_text(json.dumps({k: v for k, v in plain.items() if k != newest}))
    again = devsecrets.ensure_secret_store(layout)
    assert set(json.loads(clients.read_text())) == set(devsecrets.SERVICE_CLIENTS)
    assert again["identity-clients"] != first["identity-clients"]  # issued again, hashed
    # Nothing missing: nothing changes.
    assert devsecrets.ensure_secret_store(layout) == again
