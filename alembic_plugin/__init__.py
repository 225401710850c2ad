"""The helios-migrate Alembic plugin (entry point ``alembic.plugins: helios``).

Nothing from ``alembic.autogenerate`` is imported at module import time: Alembic imports plugins
while ``alembic.autogenerate`` itself is being imported.
"""
