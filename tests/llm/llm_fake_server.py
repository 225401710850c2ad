"""A small OpenAI-compatible HTTP server on 127.0.0.1 that answers from recorded fixtures.

It implements what the ``openai`` SDK calls: ``POST /v1/chat/completions`` and ``GET /v1/models``,
checks the bearer key (401) and the model name (404) as OpenAI does, and records every request so
tests can read what the client sent.  A reply may be delayed (to test client timeouts) or be an
HTTP error.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    message: str = ""
    delay: float = 0.0


def load_replies(name: str) -> list[Reply]:
    """Replies recorded in ``fixtures/<name>.json``: ``{"replies": [{"json": {...}} | {"content": "..."}
    | {"status": 400, "message": "..."}, ...]}``, each optionally with ``"delay"`` seconds."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    replies = []
    for item in data["replies"]:
        content = item.get("content")
        if "json" in item:
            content = json.dumps(item["json"])
        replies.append(
            Reply(content, int(item.get("status", 200)), item.get("message", ""), float(item.get("delay", 0)))
        )
    return replies


class FakeLLMServer:
    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        api_key: str = "test",
        models: tuple[str, ...] = ("test-model",),
        json_schema: bool = True,
    ) -> None:
        self.replies = list(replies or [])
        self.api_key = api_key
        self.models = models
        self.json_schema = json_schema
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, *replies: Reply) -> None:
        self.replies += replies

    def user_texts(self, index: int = -1) -> list[str]:
        return [m["content"] for m in self.requests[index]["messages"] if m["role"] == "user"]

    def all_text(self) -> str:
        return "\n".join(json.dumps(r) for r in self.requests)

    def _next(self) -> Reply:
        with self._lock:
            if not self.replies:
                return Reply(status=500, message="the fake server has no more recorded replies")
            return self.replies.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, status: int, message: str, code: str | None = None) -> None:
                self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}})

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._error(401, "Incorrect API key provided.", "invalid_api_key")
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in fake.models
                    ]})
                else:
                    self._error(404, f"no route {self.path}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers.items()))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._error(404, f"no route {self.path}")
                    return
                if not self._authorized():
                    return
                model = body.get("model")
                if model not in fake.models:
                    self._error(404, f"The model `{model}` does not exist.", "model_not_found")
                    return
                fmt = (body.get("response_format") or {}).get("type")
                if fmt == "json_schema" and not fake.json_schema:
                    self._error(400, "response_format json_schema is not supported by this server")
                    return
                reply = fake._next()
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    self._error(reply.status, reply.message or "error")
                    return
                self._send(200, {
                    "id": f"chatcmpl-{len(fake.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": "stop",
                    }],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        return Handler
