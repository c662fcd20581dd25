"""Every error leaves the API as {"detail": "...", "error_code": "..."} with a fitting HTTP status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import ErrorCode, PortsideError
from shared.secrets import redact

# Every code has its status (a unit test checks the map is complete): 4xx for what the caller can fix,
# 5xx only for what the server must.
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.REPOSITORY_NOT_FOUND: 404,
    ErrorCode.DEPLOYMENT_NOT_FOUND: 404,
    ErrorCode.REPO_NOT_FOUND: 404,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.PORT_IN_USE: 409,
    ErrorCode.NO_FREE_PORT: 409,
    ErrorCode.NO_PREVIOUS_IMAGE: 409,
    ErrorCode.DOMAIN_TAKEN: 409,
    ErrorCode.RELEASE_NOT_FOUND: 404,
    ErrorCode.INVALID_DOMAIN: 422,
    ErrorCode.PROXY_FAILED: 503,
    ErrorCode.BUILD_CANCELLED: 409,
    ErrorCode.PORT_OUT_OF_RANGE: 422,
    ErrorCode.INVALID_REPOSITORY: 422,
    ErrorCode.INVALID_DOCKERFILE: 422,
    ErrorCode.INVALID_COMPOSE: 422,
    ErrorCode.UNSUPPORTED_STACK: 422,
    ErrorCode.GIT_CLONE_FAILED: 422,
    ErrorCode.GIT_PULL_FAILED: 422,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.LINT_FAILED: 422,
    ErrorCode.POLICY_VIOLATION: 422,
    ErrorCode.PATH_OUTSIDE_REPOSITORY: 422,
    ErrorCode.REPO_PATH_FORBIDDEN: 403,
    ErrorCode.GIT_URL_FORBIDDEN: 422,
    ErrorCode.REPO_TOO_LARGE: 413,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.DETECTION_FAILED: 422,
    ErrorCode.GENERATION_FAILED: 422,
    # The app's own failures: its code did not build, start or answer.
    ErrorCode.BUILD_FAILED: 422,
    ErrorCode.BUILD_RESOURCE_LIMIT: 422,
    ErrorCode.START_FAILED: 422,
    ErrorCode.APP_CRASHED: 422,
    ErrorCode.NOT_READY: 422,
    ErrorCode.BUILD_TIMEOUT: 504,
    ErrorCode.WORKER_TIMEOUT: 504,
    ErrorCode.STUCK: 504,
    ErrorCode.DOCKER_UNAVAILABLE: 503,
    ErrorCode.LOGSTREAM_UNAVAILABLE: 503,
    ErrorCode.NETWORK_POOL_EXHAUSTED: 503,
    ErrorCode.TOOL_MISSING: 503,
    ErrorCode.TOOL_FAILED: 503,
    # Swarm mode: the registry refused the image, or the engine is no Swarm manager.
    ErrorCode.PUSH_FAILED: 503,
    ErrorCode.SWARM_UNAVAILABLE: 503,
    ErrorCode.INSUFFICIENT_DISK: 507,
    ErrorCode.WORKER_FAILED: 500,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.WEBHOOK_SIGNATURE_INVALID: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.SIGNUP_CLOSED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.EMAIL_TAKEN: 409,
    ErrorCode.USER_NOT_FOUND: 404,
    ErrorCode.TOKEN_NOT_FOUND: 404,
    ErrorCode.HOST_NOT_ALLOWED: 400,
    ErrorCode.WEBHOOK_NOT_FOUND: 404,
    ErrorCode.DELIVERY_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_URL_FORBIDDEN: 422,
    # The build depends on images this engine neither has nor can pull (RFC 4918 "Failed Dependency").
    ErrorCode.BASE_IMAGE_UNAVAILABLE: 424,
}


def error_body(detail: str, code: str) -> dict[str, str]:
    return {"detail": detail, "error_code": code}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PortsideError)
    async def portside_error(_: Request, exc: PortsideError) -> JSONResponse:
        return JSONResponse(
            error_body(redact(exc.message), exc.code), status_code=STATUS_BY_CODE[exc.code], headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse(
            error_body("; ".join(parts) or "invalid request", ErrorCode.VALIDATION_ERROR), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NOT_FOUND" if exc.status_code == 404 else f"HTTP_{exc.status_code}"
        return JSONResponse(error_body(str(exc.detail), code), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(f"Unexpected error ({exc.__class__.__name__}); see the API log.", ErrorCode.INTERNAL_ERROR),
            status_code=500,
        )
