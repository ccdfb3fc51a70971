"""`python -m kaya787_accounts`: serve the accounts service on loopback (APP_PORT)."""

from kaya787_kit.service_app import serve

from kaya787_accounts.main import create_app
from kaya787_accounts.settings import AccountsSettings


def main() -> None:
    settings = AccountsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
