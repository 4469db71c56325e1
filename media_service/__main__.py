"""``python -m media_service [--role api|worker|all]``: the media family service."""

from __future__ import annotations

import argparse
import asyncio

import grpc
from transmute.media.v1 import media_pb2, media_pb2_grpc

from media_service import handlers
from media_service.servicer import MediaServicer
from taskkit import logs
from taskkit.config import get_settings
from taskkit.creator import TaskCreator
from taskkit.service import ROLES, Family, serve


def _add_servicer(creator: TaskCreator, server: grpc.aio.Server) -> None:
    media_pb2_grpc.add_MediaServicer_to_server(MediaServicer(creator), server)


FAMILY = Family(
    name="media",
    service_name=media_pb2.DESCRIPTOR.services_by_name["Media"].full_name,
    add_servicer=_add_servicer,
    handlers=handlers.HANDLERS,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="media_service", description=__doc__)
    parser.add_argument("--role", choices=ROLES, help="overrides TRANSMUTE_ROLE (default all)")
    parser.add_argument("--port", type=int, help="overrides TRANSMUTE_GRPC_PORT")
    args = parser.parse_args()
    settings = get_settings()
    if args.role:
        settings.role = args.role
    if args.port is not None:
        settings.grpc_port = args.port
    logs.setup(settings.log_level)
    asyncio.run(serve(FAMILY, settings))


if __name__ == "__main__":
    main()
