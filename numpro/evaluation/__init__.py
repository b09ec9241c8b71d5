"""Evaluation: tasks (moment retrieval, highlight detection), the shared runner, and the CLI."""
