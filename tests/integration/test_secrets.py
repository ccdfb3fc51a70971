"""Secrets come from the Dapr secret store, generated at bootstrap, never committed."""

from __future__ import annotations

import subprocess

import pytest
from kaya787_kit.components import SECRETSTORE

from tests.support.platform import ROOT, Platform

pytestmark = pytest.mark.integration


def test_secret_is_read_through_the_sidecar(platform: Platform) -> None:
    with platform.sidecar("identity") as sidecar:
        response = sidecar.get(f"/v1.0/secrets/{SECRETSTORE}/redis-password")
    assert response.status_code == 200
    assert response.json() == {"redis-password": platform.secret("redis-password")}


def test_secret_read_needs_the_token_and_an_existing_name(platform: Platform) -> None:
    with platform.sidecar("identity", token=False) as anonymous:
        assert anonymous.get(f"/v1.0/secrets/{SECRETSTORE}/redis-password").status_code == 401
    with platform.sidecar("identity") as sidecar:
        missing = sidecar.get(f"/v1.0/secrets/{SECRETSTORE}/no-such-secret")
    assert missing.status_code in (400, 404, 500)
    assert platform.secret("redis-password") not in missing.text


def test_generated_secrets_are_not_tracked_by_git() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "var"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
    ignored = subprocess.run(
        ["git", "check-ignore", "var/secrets/secrets.json", "var/certs/issuer.key"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert ignored == ["var/secrets/secrets.json", "var/certs/issuer.key"]
