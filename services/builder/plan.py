"""The build plan the templates render: the detection's own (`Detection.plan`, stated by the provider of its
language, shared/plan.py), with the user's port applied. The builder plans nothing itself: a detection without a
plan is refused with UNSUPPORTED_STACK and the sentence that says what to add."""

from __future__ import annotations

import dataclasses
import re

from shared.detection import Detection
from shared.errors import ErrorCode, PortsideError
from shared.plan import PLANNED_STACKS, BuildPlan


def chosen_stack(detection: Detection, stack: str) -> Detection:
    """The detection as the user's `stack` choice: another stack this directory also holds, planned by that stack's
    own provider (`alternative_plans`). A stack the detector did not find here has no plan and is refused by
    `plan_for` with a sentence naming the choices."""
    plan = detection.alternative_plans.get(stack)
    if plan is not None:
        return detection.model_copy(update={
            "stack": stack, "plan": plan, "framework": plan.framework, "package_manager": plan.package_manager,
            "runtime_version": plan.version, "internal_port": plan.port, "start_command": plan.start_command,
            "build_command": plan.build_command, "output_dir": plan.output_dir, "start_command_help": None})
    choices = ", ".join(f"`{s}`" for s in sorted(detection.alternative_plans))
    return detection.model_copy(update={"stack": stack, "plan": None, "start_command_help": (
        f"Portside detected a {detection.stack} app and found no {stack} app here to plan"
        + (f"; the other stacks it can build here: {choices}" if choices else "")
        + f". Generate without `stack`, or add your own Dockerfile to build it as {stack}.")})


def plan_for(detection: Detection, port_override: int | None = None) -> BuildPlan:
    """Raises UNSUPPORTED_STACK with a user-facing sentence when the detection holds no plan."""
    plan = detection.plan
    if plan is None:
        stack = detection.stack
        if stack not in PLANNED_STACKS:
            raise PortsideError(ErrorCode.UNSUPPORTED_STACK, f"Portside cannot generate a Dockerfile for a '{stack}' "
                                                             "app yet; add your own Dockerfile to the repository.")
        raise PortsideError(ErrorCode.UNSUPPORTED_STACK, detection.start_command_help or (
            f"Portside found no way to build and start this {stack} app; add a Procfile with a `web:` line "
            "or your own Dockerfile."))
    if port_override and plan.port is not None and port_override != plan.port:
        # The planned command binds the planned port; the user asked for another one.
        start = re.sub(rf"(?<=[:= ]){plan.port}\b", str(port_override), plan.start_command)
        plan = dataclasses.replace(plan, port=port_override, start_command=start)
    return plan
