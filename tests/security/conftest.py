"""Fixtures of the security suite: the fake OpenAI-compatible server of ``tests/llm`` on 127.0.0.1,
reached through the real ``openai`` SDK, and scratch databases owned by a role that is not a
superuser (the way ``design`` proves DDL on its embedded server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from llm.llm_fake_server import FakeLLMServer, Reply
from psycopg import sql

from helios_migrate import pgserver
from helios_migrate.llm.client import LlmClient
from helios_migrate.llm.config import LlmConfig
from helios_migrate.llm.design import restricted_database
from helios_migrate.pgserver import RunningServer

MakeClient = Callable[..., LlmClient]


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def make_client(fake_llm: FakeLLMServer, tmp_path: Path) -> MakeClient:
    """A client of the fake server that will answer ``replies`` (text, or :class:`Reply`) in order."""

    def make(*replies: Reply | str, retries: int = 0, timeout: float = 10.0) -> LlmClient:
        fake_llm.add(*(Reply(r) if isinstance(r, str) else r for r in replies))
        config = LlmConfig(
            base_url=fake_llm.base_url, model="test-model", api_key="test", timeout=timeout, retries=retries
        )
        return LlmClient(config, log=tmp_path / "llm.jsonl")

    return make


@pytest.fixture
def restricted_db(pg_server: RunningServer) -> Iterator[str]:
    """Connection string of a new database owned by a new role that is not a superuser, connecting
    as that role; both are dropped after the test."""
    tag = uuid.uuid4().hex[:8]
    role, dbname = f"hm_design_{tag}", f"hm_design_db_{tag}"
    url = restricted_database(pg_server.url, role=role, dbname=dbname)
    yield url
    pgserver.drop_database(pg_server, dbname)
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
