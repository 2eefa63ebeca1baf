"""A small OpenAI-compatible chat-completions server for tests, on a loopback port.

It records every request body and answers with a canned reply that cites `[1]` and a bogus
`[9]`, as one JSON reply or as server-sent events cut into 3-character pieces (so markers arrive
split across events). `behaviour` makes it fail instead: "stall" holds the request open without
answering (until the test ends), "stall_mid_stream" sends the first events and then holds,
"error" answers HTTP 500.

    with FakeLlm() as fake:
        settings = ...(llm_base_url=fake.base_url, llm_model="fake-model")
        ...
        fake.requests[-1]["messages"]
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Behaviour = Literal["answer", "stall", "stall_mid_stream", "error"]

CANNED_ANSWER = (
    "Xu Jian is the Secretary of the CPC Qingpu District Committee [1]. "
    "He also runs the moon base [9]."
)
PIECE_CHARS = 3


class FakeLlm:
    """Start with `with FakeLlm() as fake:`; `fake.base_url` ends in /v1."""

    def __init__(self, answer: str = CANNED_ANSWER, behaviour: Behaviour = "answer") -> None:
        self.answer = answer
        self.behaviour: Behaviour = behaviour
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._release = threading.Event()  # set at shutdown: stalled handlers return
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeLlm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(body)
                fake.headers.append(dict(self.headers.items()))
                if self.path != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                elif fake.behaviour == "stall":
                    fake._release.wait(timeout=30)
                elif fake.behaviour == "error":
                    self._send_json(500, {"error": {"message": "the model crashed"}})
                elif body.get("stream"):
                    self._stream(fake.answer)
                else:
                    self._send_json(200, {
                        "id": "fake-1", "object": "chat.completion", "model": body.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": fake.answer}}],
                    })

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]
                for index, piece in enumerate(pieces):
                    if fake.behaviour == "stall_mid_stream" and index == 2:
                        self.wfile.flush()
                        fake._release.wait(timeout=30)
                        return
                    event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
