"""Prefect flows and the command-line interface: orchestration only."""
