"""Composition root of the identity service: the only place its parts are put together."""

from fastapi import FastAPI
from kaya787_kit.service_app import create_service_app

from kaya787_identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    return create_service_app(settings, title="KAYA787 identity")
