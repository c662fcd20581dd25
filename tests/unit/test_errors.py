from __future__ import annotations

from services.api.errors import STATUS_BY_CODE
from shared.errors import ErrorCode


def test_every_error_code_has_an_http_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode), set(ErrorCode) - set(STATUS_BY_CODE)
    assert all(400 <= status < 600 for status in STATUS_BY_CODE.values())
    # What the caller can fix is a 4xx: nothing about a bad request or its repository answers 5xx.
    caller = {
        ErrorCode.VALIDATION_ERROR,
        ErrorCode.INVALID_DOCKERFILE,
        ErrorCode.INVALID_COMPOSE,
        ErrorCode.LINT_FAILED,
        ErrorCode.POLICY_VIOLATION,
        ErrorCode.PORT_IN_USE,
        ErrorCode.PORT_OUT_OF_RANGE,
        ErrorCode.UNSUPPORTED_STACK,
        ErrorCode.GIT_CLONE_FAILED,
        ErrorCode.REPO_NOT_FOUND,
        ErrorCode.INVALID_STATE,
    }
    assert all(STATUS_BY_CODE[code] < 500 for code in caller)
