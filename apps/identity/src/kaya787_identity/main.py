"""Composition root of the identity service: the only place its parts are put together."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_kit.components import PUBSUB, SECRETSTORE, STATESTORE
from kaya787_kit.outbox import DaprEventPublisher
from kaya787_kit.secrets import DaprSecrets
from kaya787_kit.service_app import create_service_app
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore

from kaya787_identity import api, authorize_api
from kaya787_identity.adapters import (
    DaprClientRegistry,
    DaprLoginFailures,
    DaprRefreshTokens,
    DaprRevokedTokens,
    DaprSigningKeys,
    DaprUserRepository,
)
from kaya787_identity.code_adapters import DaprAuthorizationCodes, DaprStaffRegistry
from kaya787_identity.code_flow import CodeFlow
from kaya787_identity.oauth import install_oauth_errors
from kaya787_identity.passwords import Argon2Passwords
from kaya787_identity.pkce import parse_public_clients
from kaya787_identity.service import IdentityService, TokenPolicy
from kaya787_identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    policy = TokenPolicy(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
        free_failures=settings.login_free_failures,
        max_lockout=settings.login_max_lockout_seconds,
    )

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        state = DaprStateStore(sidecar.http, STATESTORE)
        secrets = DaprSecrets(sidecar.client, SECRETSTORE)
        revoked = DaprRevokedTokens(state, DaprEventPublisher(sidecar.http, PUBSUB))
        service = IdentityService(
            users=DaprUserRepository(state),
            failures=DaprLoginFailures(state, keep_seconds=settings.login_max_lockout_seconds * 4),
            refresh_tokens=DaprRefreshTokens(state),
            revoked=revoked,
            keys=DaprSigningKeys(secrets, settings.signing_keys_secret, state),
            clients=DaprClientRegistry(secrets, settings.clients_secret),
            passwords=Argon2Passwords(),
            policy=policy,
            staff=DaprStaffRegistry(secrets, settings.staff_secret),
        )
        app.state.code_flow = CodeFlow(
            identity=service,
            codes=DaprAuthorizationCodes(state),
            clients=parse_public_clients(settings.oauth_public_clients),
        )

        async def own_jwks() -> Mapping[str, Any]:
            return await service.jwks()

        app.state.identity = service
        app.state.issuer = settings.auth_issuer
        # Identity verifies its own tokens with its own keys and revocation list.
        app.state.token_verifier = TokenVerifier(
            JwksCache(own_jwks),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            revocations=revoked,
        )
        yield

    app = create_service_app(
        settings,
        title="KAYA787 identity",
        routers=[api.public, authorize_api.router, api.internal],
        wiring=wiring,
    )
    install_oauth_errors(app)
    return app
