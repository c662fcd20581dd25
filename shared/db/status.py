"""The deployment state machine: every status, and which statuses each one may be entered from."""

from __future__ import annotations

from enum import StrEnum


class DeploymentStatus(StrEnum):
    GENERATING = "generating"
    READY = "ready"
    QUEUED = "queued"
    BUILDING = "building"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    BUILD_FAILED = "build_failed"
    CRASHED = "crashed"
    ERROR = "error"


S = DeploymentStatus

# Statuses after which nothing runs and no worker owes the deployment anything.
RESTING = frozenset({S.READY, S.STOPPED, S.BUILD_FAILED, S.CRASHED, S.ERROR})

# A deployment in one of these holds its host port; a partial unique index enforces one holder per port.
PORT_HOLDING = (S.QUEUED, S.BUILDING, S.STARTING, S.RUNNING, S.STOPPING)

# target -> statuses it may be entered from. Re-entering a transitional status (building -> building) is
# allowed on purpose: JetStream delivers at least once, and a redelivered job must be able to resume.
TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    S.GENERATING: frozenset({S.GENERATING} | RESTING),
    S.READY: frozenset({S.GENERATING}),
    S.QUEUED: frozenset(RESTING | {S.RUNNING}),
    S.BUILDING: frozenset({S.QUEUED, S.BUILDING}),
    S.STARTING: frozenset({S.BUILDING, S.QUEUED, S.STARTING}),
    S.RUNNING: frozenset({S.STARTING}),
    S.STOPPING: frozenset({S.QUEUED, S.BUILDING, S.STARTING, S.RUNNING, S.CRASHED, S.STOPPING}),
    S.STOPPED: frozenset({S.STOPPING}),
    S.BUILD_FAILED: frozenset({S.QUEUED, S.BUILDING}),
    S.CRASHED: frozenset({S.STARTING, S.RUNNING}),
    S.ERROR: frozenset(set(S) - {S.STOPPED}),
}


def allowed_sources(target: DeploymentStatus) -> frozenset[DeploymentStatus]:
    return TRANSITIONS[target]
