from __future__ import annotations

import pytest

from shared.docker.dockerfile import parse_dockerfile, read_dockerfile
from shared.docker.validate import validate_compose
from shared.errors import ErrorCode, PortsideError


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) as the one Dockerfile reader sees them."""
    return [(i.line, i.keyword, i.args) for i in parse_dockerfile(text).instructions]


def test_dockerfile_reader_joins_continuations_as_docker_does_and_skips_comments() -> None:
    text = "# c\nFROM python:3.12-slim\nRUN a \\\n  # inner comment\n  && b\nCMD [\"x\"]\n"
    assert dockerfile_instructions(text) == [
        (2, "FROM", "python:3.12-slim"),
        (3, "RUN", "a   && b"),
        (6, "CMD", '["x"]'),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("RUN echo hi\n", "must be FROM"),
        ("FROM x\nFROBNICATE y\n", "line 2: unknown instruction `FROBNICATE`"),
        ("FROM x\nRUN a \\\n", "ends inside a continued line"),
    ],
)
def test_validate_dockerfile_rejects_with_code_and_line(text: str, fragment: str) -> None:
    with pytest.raises(PortsideError) as info:
        read_dockerfile(text)
    assert info.value.code == ErrorCode.INVALID_DOCKERFILE
    assert fragment in info.value.message


def test_validate_dockerfile_accepts_arg_before_from() -> None:
    read_dockerfile("ARG V=3.12\nFROM python:${V}-slim\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("services: [a\n", "line"), ("version: '3'\n", "services"), ("services:\n  web:\n    image: x\n", "`app`")],
)
def test_validate_compose_rejects_with_code(text: str, fragment: str) -> None:
    with pytest.raises(PortsideError) as info:
        validate_compose(text)
    assert info.value.code == ErrorCode.INVALID_COMPOSE
    assert fragment in info.value.message
