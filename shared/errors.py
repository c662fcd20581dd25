"""Errors users see: a code they can branch on and a sentence that says what to do."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
    PORT_IN_USE = "PORT_IN_USE"
    PORT_OUT_OF_RANGE = "PORT_OUT_OF_RANGE"
    NO_FREE_PORT = "NO_FREE_PORT"
    INVALID_DOCKERFILE = "INVALID_DOCKERFILE"
    INVALID_COMPOSE = "INVALID_COMPOSE"
    REPO_NOT_FOUND = "REPO_NOT_FOUND"
    REPOSITORY_NOT_FOUND = "REPOSITORY_NOT_FOUND"
    DEPLOYMENT_NOT_FOUND = "DEPLOYMENT_NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    GIT_CLONE_FAILED = "GIT_CLONE_FAILED"
    GIT_PULL_FAILED = "GIT_PULL_FAILED"
    INVALID_REPOSITORY = "INVALID_REPOSITORY"
    DETECTION_FAILED = "DETECTION_FAILED"
    UNSUPPORTED_STACK = "UNSUPPORTED_STACK"
    GENERATION_FAILED = "GENERATION_FAILED"
    BUILD_FAILED = "BUILD_FAILED"
    BUILD_TIMEOUT = "BUILD_TIMEOUT"
    # A build step was killed for going over PORTSIDE_BUILD_MEMORY (exit 137, the kernel's OOM killer).
    BUILD_RESOURCE_LIMIT = "BUILD_RESOURCE_LIMIT"
    START_FAILED = "START_FAILED"
    APP_CRASHED = "APP_CRASHED"
    NOT_READY = "NOT_READY"
    WORKER_TIMEOUT = "WORKER_TIMEOUT"
    # A worker raised on every delivery of a message (the reason says what it raised).
    WORKER_FAILED = "WORKER_FAILED"
    # A program Portside runs (hadolint, docker compose) is not installed, or did not run.
    TOOL_MISSING = "TOOL_MISSING"
    TOOL_FAILED = "TOOL_FAILED"
    LOGSTREAM_UNAVAILABLE = "LOGSTREAM_UNAVAILABLE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    INSUFFICIENT_DISK = "INSUFFICIENT_DISK"
    NETWORK_POOL_EXHAUSTED = "NETWORK_POOL_EXHAUSTED"
    NO_PREVIOUS_IMAGE = "NO_PREVIOUS_IMAGE"
    STUCK = "STUCK"
    LINT_FAILED = "LINT_FAILED"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    PATH_OUTSIDE_REPOSITORY = "PATH_OUTSIDE_REPOSITORY"
    REPO_PATH_FORBIDDEN = "REPO_PATH_FORBIDDEN"
    GIT_URL_FORBIDDEN = "GIT_URL_FORBIDDEN"
    REPO_TOO_LARGE = "REPO_TOO_LARGE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    BUILD_CANCELLED = "BUILD_CANCELLED"
    BASE_IMAGE_UNAVAILABLE = "BASE_IMAGE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    RATE_LIMITED = "RATE_LIMITED"
    SIGNUP_CLOSED = "SIGNUP_CLOSED"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    TOKEN_NOT_FOUND = "TOKEN_NOT_FOUND"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
    # The reverse proxy: a bad host name, a name another deployment has, Caddy refusing or not answering.
    INVALID_DOMAIN = "INVALID_DOMAIN"
    DOMAIN_TAKEN = "DOMAIN_TAKEN"
    PROXY_FAILED = "PROXY_FAILED"
    RELEASE_NOT_FOUND = "RELEASE_NOT_FOUND"
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"
    # A webhook URL that is not http(s), does not resolve, or reaches a loopback/private host (shared/outbound.py).
    WEBHOOK_URL_FORBIDDEN = "WEBHOOK_URL_FORBIDDEN"
    # A git host's webhook delivery whose signature (or GitLab token) does not match the repository's hook secret.
    WEBHOOK_SIGNATURE_INVALID = "WEBHOOK_SIGNATURE_INVALID"
    PUSH_FAILED = "PUSH_FAILED"
    SWARM_UNAVAILABLE = "SWARM_UNAVAILABLE"


class PortsideError(Exception):
    """An error with a code and an actionable message; the API maps it to {"detail", "error_code"}."""

    def __init__(self, code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers  # e.g. Retry-After on RATE_LIMITED, WWW-Authenticate on UNAUTHORIZED

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
