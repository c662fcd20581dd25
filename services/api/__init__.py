"""REST API: validates requests, writes Postgres, publishes commands, waits for replies where the plan says so."""
