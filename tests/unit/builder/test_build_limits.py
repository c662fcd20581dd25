"""Build caps as the engine gets them, and when a failed step counts as killed for memory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.builder.build import out_of_memory
from shared.config import Settings
from shared.docker.build import BuildLimits, BuildOutcome, memory_bytes


def test_build_limits_cap_memory_without_swap_and_cpus_by_quota() -> None:
    limits = BuildLimits.of(Settings(build_memory="256m", build_cpus=1.5))
    assert limits.container_limits() == {
        "memory": 256 * 1024**2, "memswap": 256 * 1024**2, "cpuperiod": 100_000, "cpuquota": 150_000,
    }
    assert limits.describe() == "256 MB, 1.5 CPUs"


def test_build_limits_without_a_cpu_cap_halve_the_build_weight_and_none_lifts_the_memory_cap() -> None:
    limits = BuildLimits.of(Settings(build_memory="none"))
    assert limits.memory is None
    assert limits.container_limits() == {"cpushares": 512}
    assert BuildLimits.of(Settings()).memory == 4 * 1024**3  # the default cap


@pytest.mark.parametrize("value", ["256", "256mb", "0m", "-1g", ""])
def test_build_memory_setting_refuses_what_docker_would_not_read(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(build_memory=value)


def test_memory_bytes_reads_the_compose_notation() -> None:
    assert [memory_bytes(v) for v in ("512b", "2k", "3m", "1g", "none", None)] == [
        512, 2048, 3 * 1024**2, 1024**3, None, None,
    ]


def test_out_of_memory_needs_a_kill_under_a_cap_or_the_engines_oom_event() -> None:
    killed = BuildOutcome(None, False, "returned a non-zero code: 137", exit_code=137)
    capped = BuildLimits(memory=256 * 1024**2)
    assert out_of_memory(killed, capped)
    assert not out_of_memory(killed, BuildLimits())  # a SIGKILL with no cap is not a memory limit
    assert not out_of_memory(BuildOutcome(None, False, "exit 1", exit_code=1), capped)
    assert out_of_memory(BuildOutcome(None, False, "x", exit_code=137, oom_killed=True), BuildLimits())
