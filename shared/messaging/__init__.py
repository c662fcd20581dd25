"""Subjects, event payloads and JetStream streams: the only contract between services."""
