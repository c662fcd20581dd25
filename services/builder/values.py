"""Values read from a repository are data: before one goes into a generated file it is checked to be a single
line that cannot end a Dockerfile instruction early, continue it into the next one, or start a YAML key."""

from __future__ import annotations

import re
from typing import Any

from shared.errors import ErrorCode, PortsideError

# A line break ends an instruction; a trailing backslash or backtick continues it into the next template line.
UNSAFE = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\x85]|[\\`]\s*$")


def single_line(value: Any) -> Any:
    """Jinja's `finalize`: every value rendered into a Dockerfile passes here."""
    if isinstance(value, str) and UNSAFE.search(value):
        shown = value.encode("unicode_escape").decode()[:120]
        raise PortsideError(ErrorCode.POLICY_VIOLATION,
                            f"A value read from the repository (`{shown}`) holds a line break, a control character or "
                            "a trailing escape; Portside will not write it into a Dockerfile. Fix the value (start "
                            "command, output directory, version) in the repository, or write the Dockerfile yourself.")
    return value


def comment(value: str) -> str:
    """A value shown in a `#` comment: control characters become spaces, so it stays one comment line."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", value)
