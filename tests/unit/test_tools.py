"""A program Portside runs that is not there is an error with a code, never a silent pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shared.docker import compose, lint
from shared.errors import ErrorCode, PortsideError


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A machine without hadolint or compose: nothing beside the interpreter, nothing on PATH.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    compose._docker_has_compose.cache_clear()


def test_missing_hadolint_fails_the_lint_with_tool_missing(no_tools: None) -> None:
    with pytest.raises(PortsideError) as info:
        lint.check_lint("FROM python:3.12-slim\nCMD [\"python\"]\n")
    assert info.value.code == ErrorCode.TOOL_MISSING
    assert "hadolint" in info.value.message


def test_missing_compose_is_tool_missing(no_tools: None) -> None:
    with pytest.raises(PortsideError) as info:
        compose.compose_command()
    assert info.value.code == ErrorCode.TOOL_MISSING


def test_hadolint_that_does_not_answer_its_report_is_tool_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real program in hadolint's place that prints something else (a broken install).
    broken = tmp_path / "hadolint"
    broken.write_text("#!/bin/sh\necho 'segmentation fault' >&2\nexit 139\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(PortsideError) as info:
        lint.lint_dockerfile("FROM python:3.12-slim\n")
    assert info.value.code == ErrorCode.TOOL_FAILED and "segmentation fault" in info.value.message
