"""Database: models, sessions and the one place that writes a deployment's status."""
