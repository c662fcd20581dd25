"""Webhook deliveries connect to the address the URL check accepted, never to what the name resolves to later
(DNS rebinding), with real sockets on loopback and the machine's real resolver: `localhost` resolves to
127.0.0.1, a check's answer pinned to 127.0.0.2 must reach 127.0.0.2 only. Over TLS, SNI and the certificate
check are for the name; redirects are not followed."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.logstream.pinned import pinned_client
from shared.config import Settings
from shared.outbound import Target
from shared.webhooks import check_webhook_target
from tests.receivers import Receiver, Receivers


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers() as made:
        yield made


def twin_receivers(receivers: Receivers) -> tuple[Receiver, Receiver]:
    """A receiver on 127.0.0.1 (where `localhost` resolves now) and one on 127.0.0.2, on the same port."""
    for _ in range(20):
        now = receivers.new("127.0.0.1")
        port = int(now.url.rsplit(":", 1)[1].split("/")[0])
        try:
            checked = receivers.new("127.0.0.2", port)
        except OSError:  # the port is taken on 127.0.0.2; try another
            continue
        return now, checked
    pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")


async def test_a_delivery_reaches_the_checked_address_while_the_name_now_resolves_elsewhere(
    receivers: Receivers,
) -> None:
    now, checked = twin_receivers(receivers)
    port = int(now.url.rsplit(":", 1)[1].split("/")[0])
    url = f"http://localhost:{port}/hook"
    resolved = check_webhook_target(url, Settings(allow_private_networks=True))
    assert "127.0.0.1" in resolved.addresses  # the real resolver's answer today
    # What a rebinding name does: the check saw one address, the name answers another by the time of the POST.
    at_check = replace(resolved, addresses=("127.0.0.2",))
    async with pinned_client(at_check, timeout=10) as http:
        resp = await http.post(at_check.url, content=b"{}")
    assert resp.status_code == 200
    assert len(checked.seen) == 1 and now.seen == []
    assert checked.seen[0][1]["Host"] == f"localhost:{port}"  # the name, as the receiver expects
    # Without pinning (what a plain client does), the same URL goes wherever the name resolves now.
    async with httpx.AsyncClient(trust_env=False) as plain:
        await plain.post(url, content=b"{}")
    assert len(now.seen) == 1


async def test_a_pinned_client_follows_no_redirect_and_calls_no_other_host(receivers: Receivers) -> None:
    trap = receivers.new()
    redirecting = receivers.new(status=307, location=trap.url)
    target = check_webhook_target(redirecting.url, Settings(allow_private_networks=True))
    async with pinned_client(target, timeout=10) as http:
        resp = await http.post(target.url, content=b"{}")
        assert resp.status_code == 307
        with pytest.raises(httpx.ConnectError):
            await http.post(trap.url.replace("127.0.0.1", "localhost"), content=b"{}")
    assert len(redirecting.seen) == 1 and trap.seen == []


async def test_an_international_name_is_pinned_in_its_ascii_form(receivers: Receivers) -> None:
    receiver = receivers.new()
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    name = "bücher.portside.test"  # resolves nowhere; httpcore asks for xn--bcher-kva.portside.test
    target = Target(f"http://{name}:{port}/hook", "http", name, port, addresses=("127.0.0.1",))
    async with pinned_client(target, timeout=10) as http:
        assert (await http.post(target.url, content=b"{}")).status_code == 200
    assert receiver.seen[0][1]["Host"] == f"xn--bcher-kva.portside.test:{port}"


def self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_over_tls_the_pinned_connection_presents_and_verifies_the_name(tmp_path: Path) -> None:
    name = "hook.portside.test"  # resolves nowhere: only the pin can reach it
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(name, 443)
    cert_file, key_file = self_signed(name, tmp_path)
    server_names: list[str | None] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    server_ctx.sni_callback = lambda _sock, sni, _ctx: server_names.append(sni)  # type: ignore[assignment,func-returns-value]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        target = Target(f"https://{name}:{port}/hook", "https", name, port, addresses=("127.0.0.1",))
        trusting = ssl.create_default_context(cafile=str(cert_file))
        async with pinned_client(target, timeout=10, verify=trusting) as http:
            assert (await http.post(target.url, content=b"{}")).status_code == 204
        assert server_names == [name]
        # A certificate for another name is refused though the address is the checked one.
        other = replace(target, url=f"https://other.portside.test:{port}/hook", host="other.portside.test")
        async with pinned_client(other, timeout=10, verify=trusting) as http:
            with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
                await http.post(other.url, content=b"{}")
    finally:
        server.shutdown()
        server.server_close()
