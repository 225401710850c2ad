"""Alembic environment of the shop example, with the helios-migrate plugin enabled."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

import models

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = models.metadata


def database_url() -> str:
    """``SHOP_DATABASE_URL`` (a ``postgresql://`` URL), else ``sqlalchemy.url`` from alembic.ini."""
    url = os.environ.get("SHOP_DATABASE_URL") or config.get_main_option("sqlalchemy.url") or ""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # Alembic's comparators, named CHECK constraints, and helios-migrate's lock-safe plans.
            autogenerate_plugins=["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname", "helios"],
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
