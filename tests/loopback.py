"""Serve an ASGI app with uvicorn on a free loopback port in a daemon thread (for mock peers in tests)."""
from __future__ import annotations

import socket
import threading
import time

import uvicorn


def serve(app, name: str) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start `app` and wait until it accepts connections; returns (server, thread, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"{name}-{port}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    return server, thread, port


class LoopbackPeer:
    """A mock peer served on loopback: subclasses set `self.app` (ASGI) and NAME; `with Peer() as p:`."""

    NAME = "mock"
    app = None
    port = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self):
        self._server, self._thread, self.port = serve(self.app, self.NAME)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
