"""`python -m kaya787_partner`: serve the partner simulator on loopback (APP_PORT)."""

from kaya787_kit.service_app import serve

from kaya787_partner.main import create_app
from kaya787_partner.settings import PartnerSettings


def main() -> None:
    settings = PartnerSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
