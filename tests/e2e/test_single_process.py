"""`portside up --single-process`: the same services, subjects and consumers in one process, checked by a whole
deploy through it (API, detector, builder, runner, logstream) and by there being one Python process."""

from __future__ import annotations

from pathlib import Path

import docker
import httpx

from tests.conftest import copy_fixture
from tests.support import running_system


def _python_descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        stack.extend(children.get(child, []))
        try:
            if b"python" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def test_single_process_mode_deploys_serves_logs_and_stops(engine: docker.DockerClient, tmp_path: Path) -> None:
    with running_system(tmp_path / "home", engine, args=["--single-process"]) as system:
        assert _python_descendants(system.process.pid) == []  # every service runs inside `portside up` itself
        deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
        outcome = system.deploy(deployment_id)
        assert outcome["status"] == "running", system.call("GET", f"/api/deployments/{deployment_id}")
        assert httpx.get(f"http://127.0.0.1:{outcome['port']}/", timeout=10).status_code == 200
        logs = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 500})["data"]["logs"]
        assert "running at" in logs
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
        assert system.containers(engine, deployment_id) == []
    assert system.process.returncode == 0
