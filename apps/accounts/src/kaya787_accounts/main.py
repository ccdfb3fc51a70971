"""Composition root of the accounts service: the only place its parts are put together."""

from fastapi import FastAPI
from kaya787_kit.service_app import create_service_app

from kaya787_accounts.settings import AccountsSettings


def create_app(settings: AccountsSettings | None = None) -> FastAPI:
    settings = settings or AccountsSettings()
    return create_service_app(settings, title="KAYA787 accounts")
