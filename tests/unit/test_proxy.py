"""shared.proxy: host names are validated, and the Caddy config built from routes is what Portside means."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.proxy import Route, build_config, default_domain, is_public, normalize_domain


def _settings(**extra: object) -> Settings:
    base: dict = {"home": Path("/tmp/ps"), "proxy_admin": "127.0.0.1:2999", "proxy_http_port": 8080,
                  "proxy_https_port": 8443}
    return Settings(**(base | extra))


@pytest.mark.parametrize("name", ["App.Example.COM.", "a-b.c.test", "x1.localhost"])
def test_normalize_domain_accepts_host_names(name: str) -> None:
    assert normalize_domain(name) == name.lower().rstrip(".")


@pytest.mark.parametrize("name", ["", "localhost", "10.0.0.1", "a..b", "-a.com", "a_b.com", "*.example.com",
                                  "a.com/x", "a" * 64 + ".com", "a.com\nb.com"])
def test_normalize_domain_refuses_what_is_not_a_host_name(name: str) -> None:
    with pytest.raises(PortsideError) as caught:
        normalize_domain(name)
    assert caught.value.code == ErrorCode.INVALID_DOMAIN


def test_default_domain_is_app_dash_id_under_the_base() -> None:
    assert default_domain(_settings(base_domain="apps.example.com"), 7, "My_Shop") == "my-shop-7.apps.example.com"
    assert default_domain(_settings(), 7, "shop") is None


def test_public_names_use_acme_and_local_ones_the_internal_ca() -> None:
    settings = _settings(acme_email="ops@example.com")
    assert is_public(settings, "shop.example.com") and not is_public(settings, "shop.test")
    config = build_config(settings, [Route(1, "10.0.0.2:8000", ("shop.example.com", "shop.test"), 20001)])
    policies = config["apps"]["tls"]["automation"]["policies"]
    assert {"subjects": ["shop.test"], "issuers": [{"module": "internal"}]} in policies
    assert {"subjects": ["shop.example.com"], "issuers": [{"module": "acme", "email": "ops@example.com"}]} in policies
    assert not is_public(_settings(acme=False), "shop.example.com")


def test_config_routes_names_and_host_ports_to_the_upstream() -> None:
    routes = [Route(1, "10.0.0.2:8000", ("a.test",), 20001), Route(2, "10.0.0.3:80", (), 20002)]
    config = build_config(_settings(), routes)
    assert config["admin"] == {"listen": "127.0.0.1:2999"}
    assert config["storage"]["root"] == "/tmp/ps/caddy"  # certificates survive restarts: they live in the home
    http = config["apps"]["http"]
    assert (http["http_port"], http["https_port"]) == (8080, 8443)
    domains = http["servers"]["domains"]
    assert domains["listen"] == [":8443"]
    assert domains["routes"][0]["match"] == [{"host": ["a.test"]}]
    assert domains["routes"][0]["handle"][0]["upstreams"] == [{"dial": "10.0.0.2:8000"}]
    port = http["servers"]["port_2"]
    assert port["listen"] == ["0.0.0.0:20002"] and port["automatic_https"] == {"disable": True}
    assert port["routes"][0]["handle"][0]["upstreams"] == [{"dial": "10.0.0.3:80"}]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_config_without_names_opens_no_https_server() -> None:
    config = build_config(_settings(), [Route(2, "10.0.0.3:80", (), 20002)])
    assert "domains" not in config["apps"]["http"]["servers"] and "tls" not in config["apps"]


def test_behind_the_proxy_the_app_publishes_no_host_port() -> None:
    import json

    from services.runner.service import StartPlan, _behind_proxy

    plan = StartPlan(1, Path("/r"), Path("/r"), "", [], "app", "img", 20001, None, internal_port=None)
    model = {"services": {"app": {"ports": [{"target": 8000, "published": "20001", "host_ip": "0.0.0.0"}]},
                          "db": {"image": "postgres"}}}
    text, port = _behind_proxy(json.dumps(model), plan)
    assert port == 8000 and "ports" not in json.loads(text)["services"]["app"]
    # No port in the model: the detected internal port is used.
    assert _behind_proxy(json.dumps({"services": {"app": {}}}), StartPlan(
        1, Path("/r"), Path("/r"), "", [], "app", "img", 20001, None, internal_port=3000))[1] == 3000
