"""Checks on Dockerfiles and compose files, generated or edited by users, before anything is built."""

from __future__ import annotations

import yaml

from shared.errors import ErrorCode, PortsideError

INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    result: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(p.strip() for p in pending).strip()
        pending = []
        word, _, args = joined.partition(" ")
        result.append((start, word.upper(), args.strip()))
    if pending:
        raise PortsideError(ErrorCode.INVALID_DOCKERFILE, f"line {start}: the file ends inside a continued line (trailing `\\`).")
    return result


def validate_dockerfile(text: str) -> None:
    if not text.strip():
        raise PortsideError(ErrorCode.INVALID_DOCKERFILE, "The Dockerfile is empty; it needs at least a FROM line.")
    instructions = dockerfile_instructions(text)
    for number, word, args in instructions:
        if word not in INSTRUCTIONS:
            raise PortsideError(ErrorCode.INVALID_DOCKERFILE, f"line {number}: unknown instruction `{word}`.")
        if word != "ARG" and not args:
            raise PortsideError(ErrorCode.INVALID_DOCKERFILE, f"line {number}: `{word}` needs arguments.")
    first = next((w for _, w, _ in instructions if w != "ARG"), None)
    if first != "FROM":
        raise PortsideError(ErrorCode.INVALID_DOCKERFILE, "The first instruction (after ARG) must be FROM.")


def validate_compose(text: str) -> dict:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise PortsideError(ErrorCode.INVALID_COMPOSE, f"{where}the compose file is not valid YAML ({getattr(exc, 'problem', exc)}).") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, "The compose file needs a `services:` mapping with at least one service.")
    if "app" not in doc["services"]:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, "The compose file needs a service named `app` (the one Portside publishes).")
    return doc
