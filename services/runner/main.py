"""Runner worker process: `python -m services.runner.main` (started by `portside up`)."""

from services.runner.handlers import register
from shared.worker import run_worker


def main() -> None:
    run_worker("runner", register)


if __name__ == "__main__":
    main()
