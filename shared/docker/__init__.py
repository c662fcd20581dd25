"""Thin wrapper over the Docker SDK and the compose CLI, with error mapping to PortsideError."""

from shared.docker.client import LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_MANAGED, Owner, docker_client

__all__ = ["LABEL_DEPLOYMENT", "LABEL_INSTANCE", "LABEL_MANAGED", "Owner", "docker_client"]
