"""Detector worker process: `python -m services.detector.main` (started by `portside up`)."""

from services.detector.handlers import register
from shared.worker import run_worker


def main() -> None:
    run_worker("detector", register)


if __name__ == "__main__":
    main()
