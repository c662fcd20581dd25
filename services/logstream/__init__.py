"""Logstream: relays container logs to the logs stream and serves build + app logs over SSE."""
