"""Service invocation between real sidecars, with certificates issued by our Sentry."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
from cryptography import x509

from tests.support.platform import Platform, eventually

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("target", ["identity", "accounts", "transactions", "analytics"])
def test_invoke_each_app_through_two_sidecars(platform: Platform, target: str) -> None:
    response = platform.call(target, "GET", "/readyz", via="gateway")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_invocation_reaches_an_app_token_protected_route(platform: Platform) -> None:
    # The discovery document sits behind identity's app-token check: a 200 proves that
    # identity's sidecar presented the token after the mTLS hop.
    response = platform.call("identity", "GET", "/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json()["issuer"] == "http://127.0.0.1:8080"


def test_sentry_signed_a_certificate_for_every_sidecar(platform: Platform) -> None:
    metrics = httpx.get(
        f"http://127.0.0.1:{platform.stack.ports.sentry_metrics}/metrics", timeout=5.0
    ).text
    signed = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("dapr_sentry_cert_sign_success_total")
    }
    # Every sidecar (the gateway's included) plus placement and scheduler, at least once.
    assert sum(signed.values()) >= len(platform.app_ids()) + 2


def _peer_certificate(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5.0) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_internal_grpc_port_serves_a_spiffe_certificate_from_our_ca(platform: Platform) -> None:
    app = platform.stack.run_file.app("accounts")
    cert = _peer_certificate(app.internal_grpc_port)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    # Sentry's trust domain is "localhost"; app identities default to the "public" one.
    assert "spiffe://public/ns/default/accounts" in uris
    issuer = x509.load_pem_x509_certificate((platform.layout.certs / "issuer.crt").read_bytes())
    cert.verify_directly_issued_by(issuer)


def test_internal_grpc_port_refuses_a_client_without_certificate(platform: Platform) -> None:
    app = platform.stack.run_file.app("accounts")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])

    def rejected() -> bool:
        try:
            with (
                socket.create_connection(("127.0.0.1", app.internal_grpc_port), timeout=5) as raw,
                context.wrap_socket(raw) as tls,
            ):
                # TLS 1.3 reports a missing client certificate after the handshake.
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                return tls.recv(1) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True

    assert eventually(rejected, timeout=5.0, what="the sidecar to refuse a certificate-less peer")


def test_sidecar_api_requires_the_dapr_api_token(platform: Platform) -> None:
    with platform.sidecar("identity", token=False) as anonymous:
        assert anonymous.get("/v1.0/metadata").status_code == 401
        assert anonymous.get("/v1.0/invoke/accounts/method/readyz").status_code == 401
    with platform.sidecar("identity") as sidecar:
        wrong = sidecar.get("/v1.0/metadata", headers={"dapr-api-token": "x" * 43})
        assert wrong.status_code == 401
