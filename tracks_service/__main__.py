"""``python -m tracks_service [--role api|worker|all] [--port N] [--kinds ...]``."""

from taskkit import service
from tracks_service.family import FAMILY


def main() -> None:
    service.main(FAMILY)


if __name__ == "__main__":
    main()
