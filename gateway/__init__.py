"""The HTTP/JSON gateway: the ittybit Tasks API over HTTP, translated into gRPC calls to the family
services. ``core`` holds what every route relies on, ``api`` the routes and the shapes of their
bodies; ``main`` builds the app, and ``python -m gateway`` serves it.
"""

from gateway.main import create_app

__all__ = ["create_app"]
