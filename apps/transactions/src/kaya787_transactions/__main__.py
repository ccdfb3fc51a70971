"""`python -m kaya787_transactions`: serve the transactions service on loopback (APP_PORT)."""

from kaya787_kit.service_app import serve

from kaya787_transactions.main import create_app
from kaya787_transactions.settings import TransactionsSettings


def main() -> None:
    settings = TransactionsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
