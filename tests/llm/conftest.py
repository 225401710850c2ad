from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helios_migrate.llm.client import LlmClient
from helios_migrate.llm.config import LlmConfig

from .llm_fake_server import FakeLLMServer, Reply, load_replies


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def make_client(fake_llm: FakeLLMServer, tmp_path: Path) -> Callable[..., LlmClient]:
    def make(*replies: Reply | str, timeout: float = 10.0, retries: int = 2, log: bool = True) -> LlmClient:
        for r in replies:
            fake_llm.add(*(load_replies(r) if isinstance(r, str) else [r]))
        config = LlmConfig(
            base_url=fake_llm.base_url, model="test-model", api_key="test", timeout=timeout, retries=retries
        )
        return LlmClient(config, log=tmp_path / "llm.jsonl" if log else None)

    return make
