"""``python -m intelligence_service [--role api|worker|all] [--port N] [--kinds ...]``."""

from intelligence_service.family import FAMILY
from taskkit import service


def main() -> None:
    service.main(FAMILY)


if __name__ == "__main__":
    main()
