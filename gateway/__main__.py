"""``python -m gateway``: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from gateway.core import header_limited_protocol
from gateway.main import create_app
from taskkit import logs
from taskkit.config import get_settings


def main() -> None:
    settings = get_settings()
    logs.setup(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        http=header_limited_protocol(settings),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )


if __name__ == "__main__":
    main()
