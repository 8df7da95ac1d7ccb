"""Alembic's environment for the schema; the revisions are in ``versions``."""
