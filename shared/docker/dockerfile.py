"""The one Dockerfile reader: agrees with Docker's own parser (moby/buildkit `frontend/dockerfile/parser`) on what
a file says, so the policy, validation, the base-image check and the builder all read the same instructions.

What it follows, as Docker does: parser directives at the very top (`# syntax=`, `# escape=`, `# check=`), the
escape character they set, line continuations (comment and blank lines inside a continuation are dropped),
heredocs on RUN/COPY/ADD (`<<EOF`, `<<-EOF`, quoted terminators, several on one line), leading `--flags`, JSON
(exec) and shell forms, ARG before FROM, and variable substitution in FROM (`$A`, `${A}`, `${A:-x}`, `${A:+x}`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import ErrorCode, PortsideError

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
})
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
# `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (the word is a shell word: letters, digits, _ . -).
HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z0-9_.\-]+)\2")
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _invalid(line: int, message: str) -> PortsideError:
    return PortsideError(ErrorCode.INVALID_DOCKERFILE, f"line {line}: {message}")


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    strip_tabs: bool = False


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line the instruction starts on
    end_line: int
    keyword: str  # upper case
    args: str  # everything after the keyword, continuations joined (flags included)
    flags: dict[str, str] = field(default_factory=dict)  # leading `--name=value` (`--link` -> "")
    value: str = ""  # args without the leading flags
    exec_form: list[str] | None = None  # the JSON array form, when the value is one
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def words(self) -> list[str]:
        return self.exec_form if self.exec_form is not None else self.value.split()


@dataclass(frozen=True)
class BaseImage:
    line: int
    reference: str  # after ARG substitution; may still hold `$` when an ARG has no value
    stage: str | None  # the name given with `AS`, lower case
    platform: str | None = None


@dataclass(frozen=True)
class Dockerfile:
    directives: dict[str, str]
    escape: str
    instructions: list[Instruction]

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def global_args(self) -> dict[str, str | None]:
        """ARGs declared before the first FROM (the only ones FROM lines can use), with their defaults."""
        found: dict[str, str | None] = {}
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                break
            if instruction.keyword == "ARG":
                for name, default in _arg_pairs(instruction.value):
                    found[name] = default
        return found

    def base_images(self, build_args: Mapping[str, str] | None = None) -> list[BaseImage]:
        """Every FROM with its image after substitution; build args override ARG defaults, as `docker build`
        does. A FROM naming an earlier stage is included (callers skip those through `stage`)."""
        scope = {k: v for k, v in self.global_args().items() if v is not None}
        for name, value in (build_args or {}).items():
            if name in self.global_args():
                scope[name] = value
        images = []
        for instruction in self.of("FROM"):
            words = instruction.value.split()
            if not words:
                continue
            stage = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            platform = instruction.flags.get("platform")
            images.append(BaseImage(instruction.line, substitute(words[0], scope), stage,
                                    substitute(platform, scope) if platform else None))
        return images

    def stage_names(self) -> set[str]:
        return {b.stage for b in self.base_images() if b.stage}

    def exposed_ports(self) -> list[int]:
        ports = []
        for instruction in self.of("EXPOSE"):
            for word in instruction.value.split():
                number = word.split("/")[0]
                if number.isdigit():
                    ports.append(int(number))
        return ports


def substitute(text: str, scope: Mapping[str, str]) -> str:
    """Docker's word expansion for the forms FROM lines use; unknown variables stay as written."""

    def expand(match: re.Match[str]) -> str:
        name = match[1] or match[4]
        operator, word = match[2], match[3] or ""
        value = scope.get(name)
        if operator in (":-", "-"):
            unset = value is None or (operator == ":-" and value == "")
            return word if unset else value  # type: ignore[return-value]
        if operator in (":+", "+"):
            set_ = value is not None and (operator == "+" or value != "")
            return word if set_ else ""
        return value if value is not None else match[0]

    return VARIABLE.sub(expand, text)


def _arg_pairs(value: str) -> list[tuple[str, str | None]]:
    pairs = []
    for word in value.split():
        name, sep, default = word.partition("=")
        pairs.append((name, _unquote(default) if sep else None))
    return pairs


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        word, _, remainder = rest.partition(" ")
        name, _, value = word[2:].partition("=")
        if not name:
            break
        flags[name.lower()] = _unquote(value)
        rest = remainder.lstrip()
    return flags, rest


def _exec_form(value: str) -> list[str] | None:
    if not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None  # Docker falls back to the shell form too
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return parsed
    return None


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Directives are comments of the form `# key=value` before anything else; the first other line ends them."""
    found: dict[str, str] = {}
    index = 0
    for index, raw in enumerate(lines):
        match = DIRECTIVE.match(raw.strip())
        if not match or match[1].lower() not in KNOWN_DIRECTIVES or match[1].lower() in found:
            return found, index
        found[match[1].lower()] = match[2]
    return found, len(lines)


def parse_dockerfile(text: str) -> Dockerfile:
    """The instructions of a Dockerfile, or INVALID_DOCKERFILE naming the line where Docker would stop too."""
    lines = text.lstrip("\ufeff").splitlines()
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise _invalid(1, f"`# escape={escape}` is not valid; Docker accepts only \\ and `.")
    instructions: list[Instruction] = []
    index = start
    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        first_line = index + 1
        parts: list[str] = []
        line = raw.lstrip()
        while True:
            body = line.rstrip()
            if body.endswith(escape):
                parts.append(body[: -len(escape)])
                index += 1
                # Inside a continuation, comment lines and blank lines are dropped, as Docker does.
                while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
                    index += 1
                if index >= len(lines):
                    raise _invalid(first_line, f"the file ends inside a continued line (trailing `{escape}`).")
                line = lines[index]
                continue
            parts.append(line)
            break
        joined = "".join(parts).strip()
        words = joined.split(None, 1)
        keyword, args = words[0].upper(), (words[1].strip() if len(words) > 1 else "")
        end_line = index + 1
        index += 1
        flags, value = _split_flags(args)
        heredocs: list[Heredoc] = []
        if keyword in HEREDOC_INSTRUCTIONS or (
            keyword == "ONBUILD" and value.split(" ", 1)[0].upper() in HEREDOC_INSTRUCTIONS
        ):
            for match in HEREDOC.finditer(value):
                strip_tabs, name = match[1] == "-", match[3]
                body_lines = []
                while index < len(lines):
                    candidate = lines[index].lstrip("\t") if strip_tabs else lines[index]
                    index += 1
                    if candidate == name:
                        break
                    body_lines.append(candidate)
                else:
                    raise _invalid(first_line, f"the heredoc `<<{name}` is never closed by a line `{name}`.")
                heredocs.append(Heredoc(name, "\n".join(body_lines) + "\n", strip_tabs))
                end_line = index
        instructions.append(Instruction(
            line=first_line, end_line=end_line, keyword=keyword, args=args, flags=flags, value=value,
            exec_form=_exec_form(value), heredocs=tuple(heredocs),
        ))
    return Dockerfile(directives=directives, escape=escape, instructions=instructions)


def validate(dockerfile: Dockerfile) -> None:
    """What `docker build` refuses before running a step: unknown instructions, missing arguments, no FROM first,
    broken exec forms, EXPOSE that is no port. INVALID_DOCKERFILE with the line."""
    if not dockerfile.instructions:
        raise PortsideError(ErrorCode.INVALID_DOCKERFILE, "The Dockerfile is empty; it needs at least a FROM line.")
    for instruction in dockerfile.instructions:
        if instruction.keyword not in INSTRUCTIONS:
            raise _invalid(instruction.line, f"unknown instruction `{instruction.keyword}`.")
        if instruction.keyword != "ARG" and not instruction.args:
            raise _invalid(instruction.line, f"`{instruction.keyword}` needs arguments.")
        # CMD/ENTRYPOINT/RUN that only look like JSON run in the shell form, as in Docker; SHELL has no shell form.
        if instruction.keyword == "SHELL" and instruction.exec_form is None:
            raise _invalid(instruction.line, "`SHELL` needs a JSON list of strings.")
        if instruction.keyword == "EXPOSE":
            for port in instruction.value.split():
                number = port.split("/")[0]
                if not number.replace("-", "").isdigit() and "$" not in port:
                    raise _invalid(instruction.line, f"EXPOSE `{port}` is not a port number.")
    first = next((i for i in dockerfile.instructions if i.keyword != "ARG"), None)
    if first is None or first.keyword != "FROM":
        raise PortsideError(ErrorCode.INVALID_DOCKERFILE, "The first instruction (after ARG) must be FROM.")


def read_dockerfile(text: str) -> Dockerfile:
    """Parse and validate in one call."""
    dockerfile = parse_dockerfile(text)
    validate(dockerfile)
    return dockerfile
