"""`python -m kaya787_ops`: serve the ops console (OPS_HOST:OPS_PORT, loopback by default)."""

import uvicorn
from kaya787_kit.json_logging import configure_logging

from kaya787_ops.main import create_app
from kaya787_ops.settings import OpsSettings


def main() -> None:
    settings = OpsSettings()
    configure_logging("ops", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
