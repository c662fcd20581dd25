"""Detection providers: one language per module, registered in order in services/detector/registry.py.

Each provider has `name`, `detect(src) -> bool` (cheap file checks) and `analyze(src) -> Detection`; a provider
with `fallback = True` only runs when no other provider claimed the directory.
"""
