"""The message contract, one row per subject: whether it is a command (do this), a fact (this happened) or a
public event (a fact for subscribers outside Portside, on its own stream), which service publishes it, which
consume it, and its payload model. The code reads it (workers subscribe to the commands they consume,
`publish()` checks the payload type, the API listens to every fact, a command that fails for good is answered
by its `fails_with` fact); tests check the code against it, and the README's architecture section is drawn
from it (`python -m shared.messaging.contract`, part of `make docs`, rewrites it; a unit test fails when they
differ)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from shared.messaging.events import (
    BuildCompleted,
    BuildFailed,
    BuildRequested,
    DeleteCompleted,
    DeleteFailed,
    DeleteRequested,
    DetectCompleted,
    DetectFailed,
    DetectRequested,
    GenerateCompleted,
    GenerateFailed,
    GenerateRequested,
    RunCompleted,
    RunFailed,
    RunRequested,
    StopCompleted,
    StopFailed,
    StopRequested,
)
from shared.messaging.public import (
    BuildFinished,
    BuildStarted,
    DeploymentCrashed,
    DeploymentDeleted,
    DeploymentStatusChanged,
    PortAssigned,
    PortFreed,
    RepositoryRegistered,
)
from shared.messaging.subjects import PublicSubject, Subject

Service = Literal["api", "detector", "builder", "runner", "logstream"]


@dataclass(frozen=True)
class Route:
    subject: Subject | PublicSubject
    kind: Literal["command", "fact", "public"]
    producers: tuple[Service, ...]
    consumers: tuple[Service, ...]
    payload: type[BaseModel]
    # A command's fact that says it failed for good (published by its consumer after the last delivery).
    fails_with: Subject | None = None


S = Subject
P = PublicSubject
ROUTES: tuple[Route, ...] = (
    Route(S.DETECT_REQUESTED, "command", ("api",), ("detector",), DetectRequested, fails_with=S.DETECT_FAILED),
    Route(S.DETECT_COMPLETED, "fact", ("detector",), ("api",), DetectCompleted),
    Route(S.DETECT_FAILED, "fact", ("detector",), ("api",), DetectFailed),
    Route(S.GENERATE_REQUESTED, "command", ("api",), ("builder",), GenerateRequested, fails_with=S.GENERATE_FAILED),
    Route(S.GENERATE_COMPLETED, "fact", ("builder",), ("api",), GenerateCompleted),
    Route(S.GENERATE_FAILED, "fact", ("builder",), ("api",), GenerateFailed),
    Route(S.BUILD_REQUESTED, "command", ("api",), ("builder",), BuildRequested, fails_with=S.BUILD_FAILED),
    # The runner starts what the builder built: a fact it acts on, so it also answers it with run.failed.
    Route(S.BUILD_COMPLETED, "fact", ("builder",), ("runner", "api"), BuildCompleted, fails_with=S.RUN_FAILED),
    Route(S.BUILD_FAILED, "fact", ("builder",), ("api",), BuildFailed),
    Route(S.RUN_REQUESTED, "command", ("api",), ("runner",), RunRequested, fails_with=S.RUN_FAILED),
    Route(S.RUN_COMPLETED, "fact", ("runner",), ("logstream", "api"), RunCompleted),
    Route(S.RUN_FAILED, "fact", ("runner",), ("api",), RunFailed),
    Route(S.STOP_REQUESTED, "command", ("api",), ("runner",), StopRequested, fails_with=S.STOP_FAILED),
    Route(S.STOP_COMPLETED, "fact", ("runner",), ("api",), StopCompleted),
    Route(S.STOP_FAILED, "fact", ("runner",), ("api",), StopFailed),
    Route(S.DELETE_REQUESTED, "command", ("api",), ("runner",), DeleteRequested, fails_with=S.DELETE_FAILED),
    Route(S.DELETE_COMPLETED, "fact", ("runner",), ("api",), DeleteCompleted),
    Route(S.DELETE_FAILED, "fact", ("runner",), ("api",), DeleteFailed),
    # Public events are written to the outbox in the transaction of the change (a status change can happen in
    # any service: shared/db/repository.transition) and published by whichever process's outbox relay runs;
    # the API streams them to `portside events` (GET /api/events), logstream delivers them to webhooks.
    Route(P.DEPLOYMENT_STATUS_CHANGED, "public", ("api", "builder", "runner"), ("api", "logstream"),
          DeploymentStatusChanged),
    Route(P.DEPLOYMENT_CRASHED, "public", ("runner",), ("api", "logstream"), DeploymentCrashed),
    Route(P.DEPLOYMENT_DELETED, "public", ("runner",), ("api", "logstream"), DeploymentDeleted),
    Route(P.BUILD_STARTED, "public", ("builder",), ("api", "logstream"), BuildStarted),
    Route(P.BUILD_FINISHED, "public", ("builder",), ("api", "logstream"), BuildFinished),
    Route(P.PORT_ASSIGNED, "public", ("api", "runner"), ("api", "logstream"), PortAssigned),
    Route(P.PORT_FREED, "public", ("api", "builder", "runner"), ("api", "logstream"), PortFreed),
    Route(P.REPOSITORY_REGISTERED, "public", ("api",), ("api", "logstream"), RepositoryRegistered),
)
ROUTE: dict[Subject | PublicSubject, Route] = {route.subject: route for route in ROUTES}
SUBJECT_PAYLOADS: dict[Subject | PublicSubject, type[BaseModel]] = {route.subject: route.payload for route in ROUTES}
# Every fact the API waits on (a waiting request is answered by one of them).
FACTS: tuple[Subject, ...] = tuple(Subject(route.subject) for route in ROUTES if route.kind == "fact")


def consumed_by(service: Service) -> tuple[Subject, ...]:
    """The deploy-stream subjects a worker's durable consumer takes (the API hears facts on a core subscription
    instead; public events have consumers of their own)."""
    return tuple(Subject(route.subject) for route in ROUTES
                 if service in route.consumers and service != "api" and route.kind != "public")


README_START = "<!-- contract: generated by `python -m shared.messaging.contract` (make docs) -->"
README_END = "<!-- contract: end -->"


def diagram() -> str:
    """A mermaid flowchart of who sends what to whom: commands as solid arrows, facts as dotted ones."""
    edges: dict[tuple[Service, str, Service], list[str]] = {}
    for route in ROUTES:
        if route.kind == "public":  # drawn as one edge to the outside, below
            continue
        for producer in route.producers:
            for consumer in route.consumers:
                edges.setdefault((producer, route.kind, consumer), []).append(route.subject.value)
    lines = ["```mermaid", "flowchart LR"]
    for (source, kind, target), subjects in edges.items():
        arrow = "==>" if kind == "command" else "-.->"
        lines.append(f'    {source} {arrow}|"{"<br/>".join(subjects)}"| {target}')
    public = [route.subject.value.rsplit(".", 2)[-2] + "." + route.subject.value.rsplit(".", 1)[-1]
              for route in ROUTES if route.kind == "public"]
    lines.append(f'    outbox[(outbox)] -.->|"portside.events.v1.*<br/>{"<br/>".join(public)}"| subscribers')
    lines.append("```")
    return "\n".join(lines)


def table() -> str:
    rows = ["| subject | kind | producer | consumers | payload | fails with |", "|---|---|---|---|---|---|"]
    for route in ROUTES:
        fails = f"`{route.fails_with.value}`" if route.fails_with else ""
        rows.append(f"| `{route.subject.value}` | {route.kind} | {', '.join(route.producers)} | "
                    f"{', '.join(route.consumers)} | `{route.payload.__name__}` | {fails} |")
    return "\n".join(rows)


def readme_section() -> str:
    return f"{README_START}\n{diagram()}\n\n{table()}\n{README_END}"


def write_readme(readme: Path) -> None:
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + readme_section() + text[end:])


if __name__ == "__main__":
    write_readme(Path(__file__).resolve().parents[2] / "README.md")
