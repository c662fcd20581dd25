"""Secrets end to end: a deployment's secret reaches the app at run time, and neither it nor a credential-shaped
string the app prints reaches any log client, event or answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.conftest import copy_fixture
from tests.support import SSECollector, System

SECRET = "tr0ub4dor-and-3-more-words"
FAKE_AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def test_an_app_printing_its_secret_and_an_aws_key_leaks_neither(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-flask", tmp_path)
    app = source / "app.py"
    app.write_text(
        "import hashlib, os\n"
        f"print('my secret is', os.environ['API_SECRET'], 'and my key is {FAKE_AWS_KEY}', flush=True)\n"
        + app.read_text().replace(
            'return "hello from flask\\n"',
            'return hashlib.sha256(os.environ["API_SECRET"].encode()).hexdigest()',
        )
    )
    generated = system.deploy_path(source)
    deployment_id = generated["deployment_id"]
    put = system.call(
        "PUT",
        f"/api/deployments/{deployment_id}/env",
        json={
            "variables": [
                {"key": "API_SECRET", "value": SECRET, "secret": True},
            ]
        },
    )
    assert SECRET not in str(put)
    sse = SSECollector(f"{system.url}/api/deployments/{deployment_id}/logs/stream", headers=system.auth_headers)
    try:
        result = system.deploy(deployment_id)
        assert result["status"] == "running", result
        # The app got the real value (it answers with its hash), through no file.
        answer = httpx.get(f"http://127.0.0.1:{result['port']}/", timeout=10).text
        assert answer == hashlib.sha256(SECRET.encode()).hexdigest()
        assert sse.wait_for("my secret is", timeout=60), sse.events[-10:]
    finally:
        sse.close()

    streamed = "\n".join(data for _, data in sse.events)
    history = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 10_000})["data"]
    printed = next(e["line"] for e in history["entries"] if "my secret is" in e["line"])
    assert printed == "my secret is ******** and my key is ********"
    everything = [
        streamed,
        str(history),
        str(system.call("GET", f"/api/deployments/{deployment_id}")),
        str(system.call("GET", f"/api/deployments/{deployment_id}/events")),
        str(system.call("GET", f"/api/deployments/{deployment_id}/env")),
        str(system.call("GET", "/api/audit", params={"limit": 1000})),
    ]
    for text in everything:
        assert SECRET not in text and FAKE_AWS_KEY not in text
    for folder in (Path(generated["docker_path"]), system.home):
        for path in folder.rglob("*"):
            if (
                path.is_file()
                and path.stat().st_size < 5_000_000
                and "postgres" not in path.parts
                and "nats" not in path.parts
            ):
                assert SECRET.encode() not in path.read_bytes(), f"{path} holds the secret"
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)


def test_generated_database_passwords_are_masked_and_survive_an_edit(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-flask", tmp_path)
    (source / "requirements.txt").write_text((source / "requirements.txt").read_text() + "psycopg2-binary\n")
    generated = system.deploy_path(source)
    compose = generated["compose"]
    assert "POSTGRES_PASSWORD: ********" in compose, compose
    full = system.call("GET", f"/api/deployments/{generated['deployment_id']}")["data"]
    assert "POSTGRES_PASSWORD: ********" in full["compose_content"]
    # Sending the masked file back unchanged (plus an edit elsewhere) keeps the real password.
    edited = compose.replace("restart: unless-stopped", "restart: always", 1)
    system.call("PUT", f"/api/deployments/{generated['deployment_id']}/files", json={"compose": edited})
    on_disk = (Path(generated["docker_path"]) / "docker-compose.yml").read_text()
    assert "********" not in on_disk and "restart: always" in on_disk
