"""A real HTTP receiver on 127.0.0.1 standing in for Slack and webhook endpoints (tests and the demo):
records every request and answers from a script (status, headers, body, delay, a reset connection),
then 200, or, under ``chaos``, one of its faulty answers for that share of requests at random."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    reset: bool = False  # drop the connection (a TCP reset) instead of answering

    @property
    def accepted(self) -> bool:
        """Whether the receiver took the message (it answered 2xx, however late)."""
        return not self.reset and 200 <= self.status < 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answer: Answer = field(default_factory=Answer)


@dataclass
class Chaos:
    """Faulty answers for a share (``rate``) of the requests that no script answers, chosen at random."""

    rate: float
    answers: list[Answer]
    chance: random.Random = field(default_factory=random.Random)

    def pick(self) -> Answer:
        return self.chance.choice(self.answers) if self.chance.random() < self.rate else Answer()


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self.chaos: Chaos | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    if receiver.script:
                        answer = receiver.script.pop(0)
                    else:
                        answer = receiver.chaos.pick() if receiver.chaos else Answer()
                    receiver.received.append(Received(self.path, dict(self.headers), body, time.monotonic(), answer))
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.reset:  # linger 0: close() sends a reset, not a goodbye
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}{path}"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
