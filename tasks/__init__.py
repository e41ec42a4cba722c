"""Prefect tasks: one unit of work each, gluing models/ and storage/."""
