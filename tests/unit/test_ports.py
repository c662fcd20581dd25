from __future__ import annotations

import socket

import pytest

from services.runner.ports import check_requested_port
from services.runner.readiness import http_answers
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
