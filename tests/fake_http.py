"""A local HTTP server for tests of the OpenAI-compatible clients (embedder, reranker)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JSONHandler(BaseHTTPRequestHandler):
    """Records each POST (path, JSON body, Authorization) and answers with :meth:`answer`.

    Subclasses set ``mode`` and override ``answer(body) -> (status, payload bytes)``.
    """

    mode = "ok"
    requests: list[dict[str, Any]] = []

    def answer(self, body: Any) -> tuple[int, bytes]:
        raise NotImplementedError

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body,
                                    "authorization": self.headers.get("Authorization")})
        status, payload = self.answer(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(handler: type[JSONHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free local port; yields ``http://127.0.0.1:PORT/v1``."""
    handler.mode, handler.requests = "ok", []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
