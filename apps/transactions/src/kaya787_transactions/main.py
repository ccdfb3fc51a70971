"""Composition root of the transactions service: the only place its parts are put together."""

from fastapi import FastAPI
from kaya787_kit.service_app import create_service_app

from kaya787_transactions.settings import TransactionsSettings


def create_app(settings: TransactionsSettings | None = None) -> FastAPI:
    settings = settings or TransactionsSettings()
    return create_service_app(settings, title="KAYA787 transactions")
