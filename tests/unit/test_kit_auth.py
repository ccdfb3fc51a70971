"""The shared verifier every app uses: each attack is rejected with 401 problem+json."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_kit.problems import Problem

from tests.support import tokens as t

KID = "k1"
KEY = t.new_key()


class Revocations:
    def __init__(self) -> None:
        self.revoked: set[str] = set()

    async def is_revoked(self, token_id: str) -> bool:
        return token_id in self.revoked


class CountingJwks:
    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys
        self.fetches = 0

    async def __call__(self) -> Mapping[str, Any]:
        self.fetches += 1
        return {"keys": [t.jwk(kid, key) for kid, key in self.keys.items()]}


def _verifier(
    jwks: CountingJwks | None = None, revocations: Revocations | None = None
) -> TokenVerifier:
    return TokenVerifier(
        JwksCache(jwks or CountingJwks({KID: KEY})),
        issuer=t.ISSUER,
        audience=t.AUDIENCE,
        revocations=revocations or Revocations(),
    )


async def _rejected(token: str, verifier: TokenVerifier | None = None) -> Problem:
    with pytest.raises(Problem) as caught:
        await (verifier or _verifier()).verify(token)
    assert caught.value.status == 401
    assert "Bearer" in caught.value.headers["WWW-Authenticate"]
    return caught.value


async def test_a_valid_token_yields_the_principal() -> None:
    principal = await _verifier().verify(t.es256(t.claims(), KID, KEY))
    assert principal.subject == "user-1"
    assert principal.scopes == {"profile", "accounts"}


async def test_alg_none_is_rejected() -> None:
    await _rejected(t.unsigned(t.claims(), KID))


async def test_hs256_signed_with_the_public_key_is_rejected() -> None:
    await _rejected(t.hs256_with_public_key(t.claims(), KID, t.jwk(KID, KEY)))


async def test_expired_token_is_rejected() -> None:
    past = int(time.time()) - 3600
    problem = await _rejected(t.es256(t.claims(iat=past, nbf=past, exp=past + 60), KID, KEY))
    assert "expired" in problem.detail


async def test_not_yet_valid_token_is_rejected() -> None:
    future = int(time.time()) + 3600
    problem = await _rejected(t.es256(t.claims(nbf=future), KID, KEY))
    assert "not valid yet" in problem.detail


async def test_small_clock_skew_is_tolerated() -> None:
    soon = int(time.time()) + 10
    await _verifier().verify(t.es256(t.claims(nbf=soon, iat=soon), KID, KEY))


@pytest.mark.parametrize("field", ["iss", "aud"])
async def test_wrong_issuer_or_audience_is_rejected(field: str) -> None:
    await _rejected(t.es256(t.claims(**{field: "https://evil.example"}), KID, KEY))


@pytest.mark.parametrize("missing", ["exp", "jti", "sub", "iss", "aud", "nbf"])
async def test_missing_required_claim_is_rejected(missing: str) -> None:
    await _rejected(t.es256(t.claims(**{missing: None}), KID, KEY))


async def test_token_signed_by_another_key_under_our_kid_is_rejected() -> None:
    await _rejected(t.es256(t.claims(), KID, t.new_key()))


async def test_tampered_payload_is_rejected() -> None:
    good = t.es256(t.claims(scope="profile"), KID, KEY)
    await _rejected(t.tamper(good, scope="profile accounts identity:admin"))
    await _rejected(t.tamper(good, sub="someone-else"))


async def test_unknown_kid_refetches_once_then_rejects_without_hammering() -> None:
    jwks = CountingJwks({KID: KEY})
    verifier = _verifier(jwks)
    await verifier.verify(t.es256(t.claims(), KID, KEY))
    assert jwks.fetches == 1
    stranger = t.new_key()
    for _ in range(20):
        await _rejected(t.es256(t.claims(), "unknown", stranger), verifier)
    assert jwks.fetches == 1  # bounded: at most one refetch per interval


async def test_a_new_kid_is_picked_up_by_a_refetch() -> None:
    jwks = CountingJwks({KID: KEY})
    clock = [1000.0]
    verifier = TokenVerifier(
        JwksCache(jwks, clock=lambda: clock[0]),
        issuer=t.ISSUER,
        audience=t.AUDIENCE,
        revocations=Revocations(),
    )
    await verifier.verify(t.es256(t.claims(), KID, KEY))
    rotated = t.new_key()
    jwks.keys["k2"] = rotated
    clock[0] += 11  # past the refetch interval
    principal = await verifier.verify(t.es256(t.claims(), "k2", rotated))
    assert principal.subject == "user-1"
    assert jwks.fetches == 2


async def test_revoked_token_is_rejected() -> None:
    revocations = Revocations()
    payload = t.claims()
    revocations.revoked.add(payload["jti"])
    problem = await _rejected(t.es256(payload, KID, KEY), _verifier(revocations=revocations))
    assert "revoked" in problem.detail


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "a.b.c", "Bearer x.y.z", "\x00.\x00.\x00"])
async def test_garbage_is_rejected(garbage: str) -> None:
    await _rejected(garbage)
