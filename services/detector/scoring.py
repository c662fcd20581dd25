"""Confidence: the sum of the evidence weights, so every point of it can be traced to a file and a reason."""

from __future__ import annotations

from shared.detection import Detection

# Penalties are evidence too (negative weights), so the JSON shows why a score is low.
W_AMBIGUOUS = -25       # another runtime claims the same directory
W_INVALID_MANIFEST = -20
W_NO_START = -10        # nothing says how to run it
W_WEAK_WIN = -15        # the chosen runtime only won on order, not on evidence


def score(det: Detection) -> int:
    if det.stack == "unknown":
        return 0
    total = sum(e.weight for e in det.evidence)
    return max(0, min(100, total))
