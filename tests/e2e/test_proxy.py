"""The reverse proxy end to end: a real Caddy started by `portside up` on high ports with its internal CA, apps on
names over HTTPS, redeploys under a client polling every 20 ms through the proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.conftest import copy_fixture
from tests.support import Poller, Proxied, StartupFailed, proxy_env, running_system


@pytest.fixture(scope="module")
def proxied(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    env = proxy_env()
    try:
        with running_system(tmp_path_factory.mktemp("portside-proxy"), engine, extra_env=env) as system:
            yield Proxied(system, int(env["PORTSIDE_PROXY_HTTPS_PORT"]), int(env["PORTSIDE_PROXY_HTTP_PORT"]))
    except StartupFailed as exc:
        pytest.fail(str(exc))


def _app(tmp_path: Path, name: str, text: str) -> Path:
    source = copy_fixture("python-flask", tmp_path / name)
    app = source / "app.py"
    app.write_text(app.read_text().replace("hello from flask", text))
    return source


def _deployed(proxied: Proxied, source: Path, name: str) -> dict:
    system = proxied.system
    deployment_id = system.deploy_path(source)["deployment_id"]
    system.call("PUT", f"/api/deployments/{deployment_id}/domains", json={"domains": [name]})
    result = system.deploy(deployment_id)
    assert result["status"] == "running", (result, system.events(deployment_id)[-4:])
    return result


@pytest.mark.slow
def test_two_apps_answer_on_their_names_over_https_on_one_port(proxied: Proxied, tmp_path: Path) -> None:
    system = proxied.system
    one = _deployed(proxied, _app(tmp_path, "one", "app one"), "one.portside.test")
    two = _deployed(proxied, _app(tmp_path, "two", "app two"), "two.portside.test")
    with proxied.client() as client:
        assert proxied.get(client, "one.portside.test").text == "app one\n"
        assert proxied.get(client, "two.portside.test").text == "app two\n"
    # HTTP redirects to HTTPS on the proxy's HTTPS port.
    plain = httpx.get(f"http://127.0.0.1:{proxied.http_port}/x?y=1", headers={"Host": "one.portside.test"})
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://one.portside.test:{proxied.https_port}/x?y=1"
    # The host port still answers (the proxy listens there and follows the healthy container).
    assert httpx.get(f"http://127.0.0.1:{one['port']}/", timeout=10).text == "app one\n"
    detail = system.call("GET", f"/api/deployments/{one['deployment_id']}")["data"]
    assert detail["domains"] == ["one.portside.test"]
    assert detail["urls"] == [f"https://one.portside.test:{proxied.https_port}"]

    # A name is one deployment's: the other gets 409 with a code; a name that is no host name is a 422.
    taken = system.call("PUT", f"/api/deployments/{two['deployment_id']}/domains",
                        json={"domains": ["ONE.portside.test"]}, expect=409)
    assert taken["error_code"] == "DOMAIN_TAKEN"
    bad = system.call("PUT", f"/api/deployments/{two['deployment_id']}/domains",
                      json={"domains": ["two.portside.test", "no spaces.test"]}, expect=422)
    assert bad["error_code"] == "INVALID_DOMAIN"
    assert system.call("GET", f"/api/deployments/{two['deployment_id']}/domains")["data"]["domains"] == [
        "two.portside.test"]

    # Stopping a deployment takes its routes away: its name no longer reaches an app.
    system.call("POST", f"/api/deployments/{two['deployment_id']}/stop", params={"wait": "true"})
    with proxied.client() as client:
        # No route, so no certificate either: the TLS handshake is refused.
        with pytest.raises(httpx.ConnectError):
            proxied.get(client, "two.portside.test")
        assert proxied.get(client, "one.portside.test").text == "app one\n"


@pytest.mark.slow
def test_redeploy_under_a_polling_client_loses_no_request(
    proxied: Proxied, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = proxied.system
    source = _app(tmp_path, "zd", "version one")
    first = _deployed(proxied, source, "zd.portside.test")
    deployment_id = first["deployment_id"]
    app = source / "app.py"
    app.write_text(app.read_text().replace("version one", "version two"))

    poller = Poller(proxied, "zd.portside.test")
    try:
        second = system.deploy(deployment_id)
        time.sleep(0.5)
    finally:
        poller.finish()
    assert second["status"] == "running" and second["error_code"] is None, (second, system.events(deployment_id)[-4:])
    assert poller.failures == [], poller.failures[:5]
    assert len(poller.answers) > 100  # the client really polled across the whole redeploy
    assert poller.answers[0] == "version one\n" and poller.answers[-1] == "version two\n"
    assert httpx.get(f"http://127.0.0.1:{second['port']}/", timeout=10).text == "version two\n"
    assert second["port"] == first["port"]
    running = [c for c in system.containers(engine, deployment_id) if c.status == "running"]
    assert len(running) == 1  # the old container was drained and removed

    # A broken new version never gets traffic: the old one keeps serving and the deployment says why.
    app.write_text("raise SystemExit('config missing')\n" + app.read_text())
    poller = Poller(proxied, "zd.portside.test")
    try:
        broken = system.deploy(deployment_id)
    finally:
        poller.finish()
    assert broken["status"] == "running"
    assert broken["error_code"] in ("APP_CRASHED", "NOT_READY"), broken
    assert "keeps serving" in broken["error_message"]
    assert poller.failures == [], poller.failures[:5]
    assert set(poller.answers) == {"version two\n"}
    assert len([c for c in system.containers(engine, deployment_id) if c.status == "running"]) == 1
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
