"""The one Dockerfile reader: it must read valid files as Docker does, and the policy must see what Docker runs."""

from __future__ import annotations

import pytest

from shared.docker.dockerfile import parse_dockerfile, read_dockerfile, substitute
from shared.docker.policy import check_dockerfile_policy
from shared.errors import ErrorCode, PortsideError

ALLOWED = ["docker.io"]


def test_reader_takes_heredocs_whole_so_their_lines_are_no_instructions() -> None:
    text = "FROM debian:12\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nCMD [\"bash\"]\n"
    dockerfile = read_dockerfile(text)
    assert [i.keyword for i in dockerfile.instructions] == ["FROM", "RUN", "CMD"]
    run = dockerfile.instructions[1]
    assert run.heredocs[0].content == "apt-get update\napt-get install -y curl\n"
    assert (run.line, run.end_line) == (2, 5)


def test_reader_takes_several_heredocs_with_quoted_and_tab_stripped_terminators() -> None:
    text = "FROM debian:12\nCOPY <<-'A' <<\"B\" /x/\n\thello\n\tA\nb\nB\nUSER nobody\n"
    copy = read_dockerfile(text).instructions[1]
    assert [h.name for h in copy.heredocs] == ["A", "B"]
    assert copy.heredocs[0].content == "hello\n" and copy.heredocs[1].content == "b\n"


def test_reader_refuses_an_unclosed_heredoc_with_its_line() -> None:
    with pytest.raises(PortsideError) as info:
        read_dockerfile("FROM debian:12\nRUN <<EOF\necho hi\n")
    assert info.value.code == ErrorCode.INVALID_DOCKERFILE and info.value.message.startswith("line 2:")


def test_escape_directive_changes_the_continuation_character() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows:ltsc `\n  AS base\nRUN dir c:\\ \nUSER x\n"
    dockerfile = read_dockerfile(text)
    assert dockerfile.escape == "`"
    assert dockerfile.base_images()[0].reference == "mcr.microsoft.com/windows:ltsc"
    # With ` as the escape, a trailing backslash is an ordinary character, not a continuation.
    assert [i.keyword for i in dockerfile.instructions] == ["FROM", "RUN", "USER"]


def test_directives_end_at_the_first_other_line() -> None:
    dockerfile = parse_dockerfile("# a comment\n# escape=`\nFROM x\n")
    assert dockerfile.directives == {} and dockerfile.escape == "\\"


def test_comment_and_blank_lines_inside_a_continuation_are_dropped() -> None:
    dockerfile = read_dockerfile("FROM x\nRUN a \\\n# note\n\n  && b\nUSER y\n")
    assert dockerfile.instructions[1].args == "a   && b"
    assert dockerfile.instructions[2].line == 6


def test_flags_and_exec_form_are_split_from_the_value() -> None:
    copy, cmd = read_dockerfile(
        'FROM x AS b\nCOPY --from=b --chown=1:1 --link a /a\nCMD ["python", "-m", "app"]\n'
    ).instructions[1:]
    assert copy.flags == {"from": "b", "chown": "1:1", "link": ""} and copy.value == "a /a"
    assert cmd.exec_form == ["python", "-m", "app"]


@pytest.mark.parametrize(("text", "scope", "expected"), [
    ("${A}", {"A": "x"}, "x"), ("$A", {"A": "x"}, "x"), ("${A:-d}", {}, "d"), ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""), ("${A:+alt}", {"A": "x"}, "alt"), ("${A:+alt}", {}, ""), ("$B", {}, "$B"),
])
def test_substitution_follows_docker_word_expansion(text: str, scope: dict, expected: str) -> None:
    assert substitute(text, scope) == expected


def test_build_args_override_arg_defaults_in_from_as_docker_build_does() -> None:
    dockerfile = read_dockerfile("ARG BASE=python:3.12-slim\nFROM ${BASE}\n")
    assert dockerfile.base_images()[0].reference == "python:3.12-slim"
    assert dockerfile.base_images({"BASE": "evil.io/x:1"})[0].reference == "evil.io/x:1"
    with pytest.raises(PortsideError) as info:
        check_dockerfile_policy(dockerfile, ALLOWED, {"BASE": "evil.io/x:1"})
    assert info.value.code == ErrorCode.POLICY_VIOLATION and "evil.io" in info.value.message


@pytest.mark.parametrize(("text", "fragment"), [
    ("# syntax=evil.io/frontend:1\nFROM python:3.12-slim\n", "syntax"),
    ("FROM python:3.12-slim\nRUN --mount=type=ssh git clone x\n", "type=ssh"),
    ("FROM python:3.12-slim\nRUN --mount=type=secret,id=aws cat /run/secrets/aws\n", "type=secret"),
    ("FROM python:3.12-slim\nRUN --mount=type=ssh --mount=type=cache,target=/x git clone x\n", "type=ssh"),
    ("FROM python:3.12-slim\nRUN --mount=type=cache,id=portside-ps-1-pip,target=/x pip install x\n", "portside-"),
    ("FROM python:3.12-slim\nRUN --network=host curl 10.0.0.1\n", "network=host"),
    ("FROM python:3.12-slim\nRUN --security=insecure x\n", "insecure"),
    ("# escape=`\nFROM python:3.12-slim `\n  AS a\nFROM evil.io/x\n", "evil.io"),
    ("FROM python:3.12-slim\nCOPY --from=evil.io/tools:1 /x /x\n", "COPY --from"),
])
def test_dockerfile_policy_refuses_what_reaches_past_the_build(text: str, fragment: str) -> None:
    with pytest.raises(PortsideError) as info:
        check_dockerfile_policy(read_dockerfile(text), ALLOWED)
    assert info.value.code == ErrorCode.POLICY_VIOLATION and fragment in info.value.message
    assert info.value.message.startswith("line ")


def test_dockerfile_policy_allows_cache_mounts_and_stage_names() -> None:
    check_dockerfile_policy(
        read_dockerfile(
            "FROM node:20-slim AS deps\nRUN --mount=type=cache,target=/root/.npm npm ci\n"
            "FROM deps\nCOPY --from=deps /a /a\n"
        ),
        ALLOWED,
    )
