from __future__ import annotations

import socket

import pytest

from services.runner.ports import check_requested_port
from services.runner.readiness import http_answers, listening, loopback_only
from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.net import os_port_free


def test_os_port_free_sees_a_listening_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not os_port_free("127.0.0.1", port)
        assert not os_port_free("0.0.0.0", port)
    assert os_port_free("127.0.0.1", port)


def test_requested_port_outside_range_is_refused() -> None:
    settings = Settings(port_range_start=20000, port_range_end=20010)
    check_requested_port(settings, 20005)
    with pytest.raises(PortsideError) as info:
        check_requested_port(settings, 8080)
    assert info.value.code == ErrorCode.PORT_OUT_OF_RANGE


def test_http_answers_is_false_for_a_port_that_accepts_but_never_speaks_http() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        # Like Docker's proxy before the app listens: the connection is accepted, no HTTP comes back.
        assert not http_answers("127.0.0.1", port, timeout=0.5)


def test_generate_body_port_is_the_host_port_and_host_port_its_deprecated_alias() -> None:
    from pydantic import ValidationError

    from services.api.schemas import GenerateRequest

    body = GenerateRequest.model_validate({"stack": "node", "port": 30000, "internal_port": 3000})
    assert (body.requested_host_port, body.internal_port) == (30000, 3000)
    assert GenerateRequest.model_validate({"host_port": 30001}).requested_host_port == 30001
    assert GenerateRequest.model_validate({"port": 30001, "host_port": 30001}).requested_host_port == 30001
    with pytest.raises(ValidationError):
        GenerateRequest.model_validate({"port": 30000, "host_port": 30001})


# /proc/net/tcp and tcp6 as the kernel prints them (addresses in little-endian 32-bit words; 0A is LISTEN).
PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 10 0
   2: 0200A8C0:1F40 0100A8C0:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 10 0
"""
PROC_NET_TCP6 = """  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000001000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_listening_sockets_are_read_from_proc_net_tcp_and_a_loopback_only_port_is_told_apart() -> None:
    found = listening(PROC_NET_TCP + PROC_NET_TCP6)
    assert found == {("127.0.0.1", 3000), ("0.0.0.0", 8080), ("::1", 5000), ("::", 8080)}  # 8000: not listening
    assert loopback_only(found, 3000) == "127.0.0.1"
    assert loopback_only(found, 5000) == "::1"
    assert loopback_only(found, 8080) is None  # on every address
    assert loopback_only(found, 9000) is None  # nothing there at all: another reason


def test_an_ipv4_mapped_loopback_listener_counts_as_loopback() -> None:
    mapped = "   0: 0000000000000000FFFF00000100007F:0BB8 00000000000000000000000000000000:0000 0A 0\n"
    assert loopback_only(listening(mapped), 3000) == "127.0.0.1"
