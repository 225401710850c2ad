"""helios-migrate: lock-safe PostgreSQL schema changes from inside Alembic."""

__version__ = "0.1.0"
