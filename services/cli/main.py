"""`portside`: start the system (`up`), look at a repository offline (`detect`, `generate`), and drive
deployments through the API (`deploy`, `logs`, `status`, `stop`, `ls`, `releases`, `rollback`, `domains`), and
tail the public events (`events`).

Start-up is most of a short command's time, so this module imports only typer at the top: rich, httpx and the
detector load inside the commands that use them, and nothing here loads the server stack (FastAPI, SQLAlchemy,
FastStream, the Docker SDK). `make bench` (bench/cli_bench.py) keeps the figure."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.client import ApiError

if TYPE_CHECKING:
    from rich.console import Console

    from services.cli.client import Api

app = typer.Typer(help="Portside: point it at a git repository, get a running container.", no_args_is_help=True)

ApiOpt = Annotated[str, typer.Option("--api", envvar="PORTSIDE_API_URL", help="Portside API base URL")]


@cache
def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def out() -> Console:
    return _console()


def err() -> Console:
    return _console(stderr=True)


def _api(url: str | None) -> Api:
    from services.cli.client import Api, default_api_url

    return Api(url or default_api_url())


def _fail(exc: ApiError) -> typer.Exit:
    err().print(f"[red]error[/] {exc.code}: {exc.detail}")
    return typer.Exit(1)


@app.command()
def up(
    replicas: Annotated[list[str] | None, typer.Option("--replicas", help="e.g. detector=3 (repeatable)")] = None,
    single_process: Annotated[bool, typer.Option(
        "--single-process", help="run every service as tasks of one process (less memory, no isolation)")] = False,
) -> None:
    """Start Portside: embedded NATS and Postgres (unless PORTSIDE_NATS_URL / PORTSIDE_DATABASE_URL are set),
    then the API, logstream, detector, builder and runner as separate processes (or, with --single-process,
    as tasks of one process)."""
    from services.cli.supervisor import Supervisor, parse_replicas
    from shared.config import get_settings

    if single_process:
        if replicas:
            err().print("[red]error[/] --replicas needs one process per replica; leave out --single-process")
            raise typer.Exit(2)
        from services.cli.single import run_single

        raise typer.Exit(run_single(get_settings()))
    try:
        counts = parse_replicas(replicas or [])
    except ValueError as exc:
        err().print(f"[red]error[/] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(Supervisor(get_settings(), counts).run())


@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True, help="your account's email")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    register: Annotated[
        bool, typer.Option("--register", help="create the account first (the first one is admin)")
    ] = False,
    api: ApiOpt = "",
) -> None:
    """Log in and keep a personal API token (file readable only by you) for every later command."""
    import sys

    from services.cli.client import default_api_url
    from services.cli.client import login as save_token_login

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password", hide_input=True)
    url = api or default_api_url()
    try:
        path = save_token_login(url, email, password, register=register)
    except ApiError as exc:
        raise _fail(exc) from exc
    out().print(f"logged in to {url} as {email}; token saved in {path}")


@app.command()
def detect(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, resolve_path=True)],
    as_json: Annotated[bool, typer.Option("--json", help="print the detection as JSON")] = False,
    app_path: Annotated[str, typer.Option(help="subdirectory holding the app (monorepos)")] = "",
) -> None:
    """Detect a directory's stack offline and explain why."""
    # The CLI is a client, not a service: it may call the detector's pure function to work offline.
    from services.detector.service import detect as run_detect

    detection = run_detect(path, app_path)
    if as_json:
        # Plain text, no rich: a script reading this should not pay for a terminal renderer's start-up.
        sys.stdout.write(detection.model_dump_json(indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(title=f"Detection for {path / app_path}", show_header=False)
    for field in ("stack", "framework", "package_manager", "runtime_version", "internal_port", "start_command",
                  "build_command", "detected_db", "has_dockerfile", "has_compose", "confidence"):
        value = getattr(detection, field)
        table.add_row(field, "" if value is None else str(value))
    if detection.start_command_help:
        table.add_row("how to fix", detection.start_command_help)
    out().print(table)
    if detection.evidence:
        ev = Table("file", "reason", title="Evidence")
        for item in detection.evidence:
            ev.add_row(item.file, item.reason)
        out().print(ev)
    for warning in detection.warnings:
        out().print(f"[yellow]warning[/] {warning}")
    if detection.apps:
        apps = Table("path", "stack", "framework", "port", title="Apps in this repository")
        for sub in detection.apps:
            apps.add_row(sub.app_path, sub.stack, sub.framework or "", str(sub.internal_port or ""))
        out().print(apps)


@app.command()
def generate(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, resolve_path=True)],
    out_dir: Annotated[
        Path, typer.Option("--out", help="where to write Dockerfile, docker-compose.yml, .dockerignore")
    ],
    app_path: Annotated[str, typer.Option(help="subdirectory holding the app (monorepos)")] = "",
    internal_port: Annotated[int | None, typer.Option(help="port the app listens on in the container")] = None,
) -> None:
    """Write the Dockerfile, compose file and .dockerignore Portside would use, without deploying."""
    from services.builder.generate import generate_files
    from services.detector.service import detect as run_detect
    from shared.config import get_settings
    from shared.docker import Owner
    from shared.errors import PortsideError

    detection = run_detect(path, app_path)
    try:
        # Offline there is no deployment yet: id 0 marks files not tied to one.
        owner = Owner(get_settings().instance, 0)
        files = generate_files(detection, path / app_path, owner=owner, repo_name=path.name,
                               port_override=internal_port)
    except PortsideError as exc:
        err().print(f"[red]error[/] {exc.code}: {exc.message}")
        raise typer.Exit(1) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "Dockerfile").write_text(files.dockerfile)
    (out_dir / "docker-compose.yml").write_text(files.compose)
    (out_dir / ".dockerignore").write_text(files.dockerignore)
    out().print(f"wrote Dockerfile, docker-compose.yml and .dockerignore to {out_dir} "
              f"({detection.stack}/{detection.framework or '-'}, confidence {detection.confidence})")


@app.command()
def deploy(
    source: Annotated[str, typer.Argument(help="a local directory or a git URL")],
    branch: Annotated[str | None, typer.Option(help="branch to clone (git URLs)")] = None,
    app_path: Annotated[str, typer.Option(help="subdirectory holding the app (monorepos)")] = "",
    port: Annotated[int | None, typer.Option(help="host port to publish the app on (default: a free one)")] = None,
    internal_port: Annotated[int | None, typer.Option(help="port the app listens on in the container")] = None,
    host_port: Annotated[int | None, typer.Option(hidden=True, help="deprecated: same as --port")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU limit for the app, e.g. 0.5")] = None,
    memory: Annotated[str | None, typer.Option(help="memory limit for the app, e.g. 512m")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="follow the logs once running")] = False,
    generate_own: Annotated[bool, typer.Option(
        "--generate-own",
        help="ignore the repository's own Dockerfile / compose file; build from Portside's plan")] = False,
    api: ApiOpt = "",
) -> None:
    """Register, detect, generate and deploy, then print the URL."""
    client = _api(api)
    local = Path(source)
    body = {"path": str(local.resolve())} if local.exists() else {"url": source, "branch": branch}
    try:
        repo = client.call("POST", "/api/repositories", json=body)
        detection = client.call("POST", f"/api/deployments/detect/{repo['id']}", json={"app_path": app_path})
        err().print(f"detected [bold]{detection['stack']}[/] / {detection.get('framework') or '-'} "
                  f"(confidence {detection['confidence']})")
        generated = client.call("POST", f"/api/deployments/generate/{repo['id']}",
                                json={"app_path": app_path, "port": port if port is not None else host_port,
                                      "internal_port": internal_port,
                                      "cpu_limit": cpus, "memory_limit": memory,
                                      "use_repo_dockerfile": not generate_own})
        deployment_id = generated["deployment_id"]
        err().print(f"deployment {deployment_id}: files in {generated.get('docker_path')}; building...")
        result = client.call("POST", f"/api/deployments/{deployment_id}/deploy", params={"wait": "true"}, timeout=3600)
    except ApiError as exc:
        raise _fail(exc) from exc
    if result["status"] != "running":
        err().print(
            f"[red]deployment {deployment_id} is {result['status']}[/]: "
            f"{result.get('error_code')}: {result.get('error_message')}"
        )
        err().print(f"see `portside logs {deployment_id}`")
        raise typer.Exit(1)
    out().print(f"deployment {deployment_id} is running at [bold green]{result['url']}[/]")
    if follow:
        logs(deployment_id, follow=True, lines=100, api=api)


@app.command()
def logs(
    deployment_id: int,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep streaming new lines")] = False,
    lines: Annotated[int, typer.Option(help="how many past lines to show")] = 100,
    api: ApiOpt = "",
) -> None:
    """Show a deployment's build and app logs; -f follows them live (Server-Sent Events)."""
    client = _api(api)
    try:
        if not follow:
            data = client.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": lines})
            for entry in data.get("entries", []):
                out().print(entry["line"], markup=False, highlight=False)
            return
        for event, _, data in client.sse(f"/api/deployments/{deployment_id}/logs/stream"):
            if event != "progress":
                out().print(data, markup=False, highlight=False)
    except ApiError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        return


@app.command()
def events(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep streaming new events")] = False,
    deployment: Annotated[int | None, typer.Option("--deployment", help="only this deployment's events")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line: subject, deployment_id, payload")]
    = False,
    limit: Annotated[int, typer.Option(help="how many past events to show")] = 100,
    api: ApiOpt = "",
) -> None:
    """Show the public events (portside.events.v1.*) you may see: the last --limit, then with -f new ones live."""
    from urllib.parse import urlencode

    query = {"limit": limit, "follow": str(follow).lower()} | ({"deployment_id": deployment} if deployment else {})
    try:
        for _, _, data in _api(api).sse(f"/api/events?{urlencode(query)}"):
            if as_json:
                sys.stdout.write(data + "\n")
                sys.stdout.flush()
            else:
                out().print(_event_text(json.loads(data)), markup=False, highlight=False)
    except ApiError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        return


def _event_text(event: dict) -> str:
    """One line for people: time, event, what it is about, and what happened."""
    payload = event["payload"]
    short = event["subject"].removeprefix("portside.events.v1.")
    about = f"deployment {event['deployment_id']}" if event.get("deployment_id") is not None else (
        f"repository {payload.get('repository_id')}")
    detail = {
        "deployment.status_changed": lambda p: f"{p.get('previous_status') or '-'} -> {p['status']}"
        + (f" ({p['error_code']})" if p.get("error_code") else ""),
        "deployment.crashed": lambda p: f"exit code {p.get('exit_code')}",
        "deployment.deleted": lambda p: f"{p.get('repo_name', '')}" + (" (volumes purged)" if p.get("purged") else ""),
        "build.finished": lambda p: ("succeeded" if p["succeeded"] else f"failed ({p.get('error_code')})")
        + (f" in {p['duration_seconds']} s" if p.get("duration_seconds") is not None else ""),
        "port.assigned": lambda p: f"port {p['port']}",
        "port.freed": lambda p: f"port {p['port']}",
        "repository.registered": lambda p: p.get("url") or p.get("name", ""),
    }.get(short, lambda p: "")(payload)
    return f"{payload.get('occurred_at', '')[:19]}  {short:<26} {about:<16} {detail}".rstrip()


@app.command()
def status(deployment_id: int, api: ApiOpt = "") -> None:
    """Status, URL, CPU and memory of a deployment."""
    try:
        data = _api(api).call("GET", f"/api/deployments/{deployment_id}/status")
    except ApiError as exc:
        raise _fail(exc) from exc
    from rich.table import Table

    table = Table(show_header=False, title=f"Deployment {deployment_id}")
    for key, value in data.items():
        if value not in (None, {}, []):
            table.add_row(key, str(value))
    out().print(table)


@app.command()
def stop(deployment_id: int, api: ApiOpt = "") -> None:
    """Stop a deployment: remove its containers and free its port."""
    try:
        data = _api(api).call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
    except ApiError as exc:
        raise _fail(exc) from exc
    out().print(f"deployment {deployment_id} is {data['status']}")


@app.command()
def cancel(deployment_id: int, api: ApiOpt = "") -> None:
    """Cancel a queued or running build: its container is killed, the deployment ends build_failed."""
    try:
        data = _api(api).call("POST", f"/api/deployments/{deployment_id}/cancel")
    except ApiError as exc:
        raise _fail(exc) from exc
    out().print(f"deployment {deployment_id} is {data['status']} ({data['error_code']})")


domains_app = typer.Typer(help="A deployment's host names on the reverse proxy.", no_args_is_help=True)
app.add_typer(domains_app, name="domains")


def _domains_table(deployment_id: int, data: dict) -> None:
    from rich.table import Table

    urls = dict(zip(data["domains"], data["urls"], strict=False))
    table = Table("domain", "url", "", title=f"Deployment {deployment_id}")
    for name in data["domains"]:
        table.add_row(name, urls.get(name, ""), "default" if name == data.get("default_domain") else "")
    out().print(table)


@domains_app.command("ls")
def domains_ls(deployment_id: int, api: ApiOpt = "",
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List a deployment's names and their URLs (the PORTSIDE_BASE_DOMAIN default among them)."""
    try:
        data = _api(api).call("GET", f"/api/deployments/{deployment_id}/domains")
    except ApiError as exc:
        raise _fail(exc) from exc
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    _domains_table(deployment_id, data)


def _set_domains(api: str, deployment_id: int, change: Callable[[list[str]], list[str]]) -> None:
    """Read the names, change the list, write it back (PUT replaces them all); the default name is not one of
    those a PUT sets."""
    client = _api(api)
    try:
        current = client.call("GET", f"/api/deployments/{deployment_id}/domains")
        own = [name for name in current["domains"] if name != current.get("default_domain")]
        data = client.call("PUT", f"/api/deployments/{deployment_id}/domains", json={"domains": change(own)})
    except ApiError as exc:
        raise _fail(exc) from exc
    _domains_table(deployment_id, data)


@domains_app.command("add")
def domains_add(deployment_id: int, names: Annotated[list[str], typer.Argument(help="e.g. app.example.com")],
                api: ApiOpt = "") -> None:
    """Route more names to a deployment (HTTPS on the proxy at once when it runs)."""
    _set_domains(api, deployment_id, lambda own: own + [n for n in names if n.lower().rstrip(".") not in own])


@domains_app.command("rm")
def domains_rm(deployment_id: int, names: Annotated[list[str], typer.Argument(help="names to remove")],
               api: ApiOpt = "") -> None:
    """Stop routing names to a deployment."""

    def without(own: list[str]) -> list[str]:
        gone = {n.lower().rstrip(".") for n in names}
        missing = sorted(gone - set(own))
        if missing:
            err().print(f"[red]error[/] {', '.join(missing)}: not a name set on deployment "
                        f"{deployment_id} (the PORTSIDE_BASE_DOMAIN default always stays); see `portside domains ls "
                        f"{deployment_id}`.")
            raise typer.Exit(1)
        return [n for n in own if n not in gone]

    _set_domains(api, deployment_id, without)


@app.command()
def releases(deployment_id: int, api: ApiOpt = "",
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What ran after each successful start, newest first: the targets of `portside rollback --to`."""
    try:
        rows = _api(api).call("GET", f"/api/deployments/{deployment_id}/releases")
    except ApiError as exc:
        raise _fail(exc) from exc
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    from rich.table import Table

    table = Table("release", "image", "created", "cpus", "memory", "variables", title=f"Deployment {deployment_id}")
    for row in rows:
        table.add_row(str(row["id"]), row["image_tag"], row["created_at"][:19],
                      "" if row["cpu_limit"] is None else str(row["cpu_limit"]), row["memory_limit"] or "",
                      ", ".join(row["env_keys"]))
    out().print(table)


@app.command()
def rollback(
    deployment_id: int,
    to: Annotated[int | None, typer.Option("--to", help="a release id from `portside releases` (default: the "
                                                        "previous one)")] = None,
    api: ApiOpt = "",
) -> None:
    """Run an earlier image again, with the files, limits and variables it ran with; no build."""
    params = {"wait": "true"} | ({"release_id": str(to)} if to is not None else {})
    try:
        result = _api(api).call("POST", f"/api/deployments/{deployment_id}/rollback", params=params, timeout=900)
    except ApiError as exc:
        raise _fail(exc) from exc
    if result["status"] != "running":
        err().print(f"[red]deployment {deployment_id} is {result['status']}[/]: "
                    f"{result.get('error_code')}: {result.get('error_message')}")
        raise typer.Exit(1)
    to_what = f"release {to}" if to is not None else "the previous release"
    out().print(f"deployment {deployment_id} rolled back to {to_what}; running at [bold green]{result['url']}[/]")


@app.command("ls")
def list_deployments(api: ApiOpt = "", as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List deployments."""
    try:
        rows = _api(api).call("GET", "/api/deployments")
    except ApiError as exc:
        raise _fail(exc) from exc
    if as_json:
        out().print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table("id", "repo", "stack", "port", "status", "created")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["repo_name"],
            row["stack"] or "",
            str(row["port"] or ""),
            row["status"],
            row["created_at"][:19],
        )
    out().print(table)


if __name__ == "__main__":
    app()
