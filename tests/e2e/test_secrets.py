"""Secrets end to end: a deployment's secret reaches the app at run time, and neither it nor a credential-shaped
string the app prints reaches any log client, event or answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.secrets import open_generated
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


@pytest.mark.slow
def test_generated_database_passwords_live_only_encrypted_and_open_the_database(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-flask", tmp_path)
    (source / "requirements.txt").write_text((source / "requirements.txt").read_text() + "psycopg2-binary\n")
    app = source / "app.py"
    # The app answers with what the database says, through the URL Portside gave it.
    app.write_text("import os, psycopg2\n" + app.read_text().replace(
        'return "hello from flask\\n"',
        'return psycopg2.connect(os.environ["DATABASE_URL"]).cursor().execute("select 1") or "database ok"'))
    generated = system.deploy_path(source)
    deployment_id = generated["deployment_id"]
    reference = "${PORTSIDE_POSTGRES_PASSWORD:?Portside sets the generated password}"
    # The compose file names the password; its value is in no file and no answer.
    assert f"POSTGRES_PASSWORD: {reference}" in generated["compose"], generated["compose"]
    assert reference in (Path(generated["docker_path"]) / "docker-compose.yml").read_text()
    password = _generated(system, deployment_id)["PORTSIDE_POSTGRES_PASSWORD"]
    assert len(password) >= 20
    result = system.deploy(deployment_id)
    assert result["status"] == "running", result
    # The database (the local postgres:16 stand-in, or the real image) was initialised with the generated
    # password and the app logs in with it.
    answer = httpx.get(f"http://127.0.0.1:{result['port']}/", timeout=30).text
    logs = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 200})["data"]["entries"]
    assert answer == "database ok", [e["line"] for e in logs][-30:]
    everything = [str(system.call("GET", f"/api/deployments/{deployment_id}")),
                  str(system.call("GET", f"/api/deployments/{deployment_id}/events")),
                  str(system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 10_000}))]
    for text in everything:
        assert password not in text
    for path in Path(generated["docker_path"]).rglob("*"):
        assert password.encode() not in path.read_bytes(), f"{path} holds the password"
    system.call("DELETE", f"/api/deployments/{deployment_id}", params={"purge": "true"}, timeout=300)


def _generated(system: System, deployment_id: int) -> dict[str, str]:
    """The deployment's generated passwords as the runner reads them: encrypted in Postgres, the key in the home."""
    import asyncio

    import asyncpg

    async def read() -> bytes:
        password = (system.home / "keys" / "postgres").read_text().strip()
        conn = await asyncpg.connect(host=str(system.home / "postgres"), user="postgres", database="postgres",
                                     password=password)
        try:
            return await conn.fetchval("SELECT generated_secrets FROM deployments WHERE id = $1", deployment_id)
        finally:
            await conn.close()

    sealed = asyncio.run(read())
    assert sealed is not None and b"PORTSIDE_POSTGRES_PASSWORD" not in sealed
    return open_generated(Settings(home=system.home), sealed)
