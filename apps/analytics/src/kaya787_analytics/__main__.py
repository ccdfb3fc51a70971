"""`python -m kaya787_analytics`: serve the analytics service on loopback (APP_PORT)."""

from kaya787_kit.service_app import serve

from kaya787_analytics.main import create_app
from kaya787_analytics.settings import AnalyticsSettings


def main() -> None:
    settings = AnalyticsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
