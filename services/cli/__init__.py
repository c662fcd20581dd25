"""The `portside` command (Typer + Rich): starts the system, and talks to its API."""
