from __future__ import annotations

import pytest

from shared.docker.validate import dockerfile_instructions, validate_compose, validate_dockerfile
from shared.errors import ErrorCode, PortsideError


def test_dockerfile_instructions_join_continuations_and_skip_comments() -> None:
    text = "# c\nFROM python:3.12-slim\nRUN a \\\n  # inner comment\n  && b\nCMD [\"x\"]\n"
    assert dockerfile_instructions(text) == [(2, "FROM", "python:3.12-slim"), (3, "RUN", "a && b"), (6, "CMD", '["x"]')]


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
        validate_dockerfile(text)
    assert info.value.code == ErrorCode.INVALID_DOCKERFILE
    assert fragment in info.value.message


def test_validate_dockerfile_accepts_arg_before_from() -> None:
    validate_dockerfile("ARG V=3.12\nFROM python:${V}-slim\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("services: [a\n", "line"), ("version: '3'\n", "services"), ("services:\n  web:\n    image: x\n", "`app`")],
)
def test_validate_compose_rejects_with_code(text: str, fragment: str) -> None:
    with pytest.raises(PortsideError) as info:
        validate_compose(text)
    assert info.value.code == ErrorCode.INVALID_COMPOSE
    assert fragment in info.value.message
