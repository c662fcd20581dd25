"""Runner: assigns host ports, runs deployments with docker compose, waits for readiness, stops them."""
