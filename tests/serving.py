"""A real ``facecascade serve`` for tests: the app under uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from facecascade.serve.app import create_app
from facecascade.serve.config import ServeConfig


class LocalServer:
    """The app under uvicorn in a background thread, on a socket bound here (no port race)."""

    def __init__(self, settings: ServeConfig | None = None) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings or ServeConfig()), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self, timeout: float = 120.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, trust_env=False, timeout=5.0) as client:
            while time.monotonic() < deadline:
                assert self.thread.is_alive(), "the server thread stopped while starting (see the log above)"
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise AssertionError(f"{self.url}/healthz was not 200 within {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()
        assert not self.thread.is_alive(), "the server did not stop within 30 s"
