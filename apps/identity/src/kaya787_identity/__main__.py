"""`python -m kaya787_identity`: serve the identity service on loopback (APP_PORT)."""

from kaya787_kit.service_app import serve

from kaya787_identity.main import create_app
from kaya787_identity.settings import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
