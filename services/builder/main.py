"""Builder worker process: `python -m services.builder.main` (started by `portside up`)."""

from services.builder.handlers import register
from shared.worker import run_worker


def main() -> None:
    run_worker("builder", register)


if __name__ == "__main__":
    main()
