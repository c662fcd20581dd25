"""Thin wrapper over the Docker SDK and the compose CLI, with error mapping to PortsideError."""

from shared.docker.client import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED,
    docker_client,
    labels_for,
)

__all__ = ["LABEL_DEPLOYMENT", "LABEL_MANAGED", "docker_client", "labels_for"]
