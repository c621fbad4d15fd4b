"""Run the sandbox over real HTTP on a local port, and publish how to reach it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from pathlib import Path

import uvicorn

from sandbox.app import Sandbox, create_app
from sandbox.company import generate_company


def write_connection_file(path: Path, connections: dict) -> None:
    """Write atomically and readable by the owner only: the file holds credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(connections, out, indent=2)
    partial.replace(path)


class SandboxServer:
    """The sandbox's HTTP server; ``port=0`` picks a free port."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0):
        self.sandbox = sandbox
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.base_url = "http://{}:{}".format(*self._socket.getsockname())
        config = uvicorn.Config(create_app(sandbox), log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def connections(self) -> dict:
        return self.sandbox.connections(self.base_url)

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> SandboxServer:
        """Serve from a background thread (for tests and in-process use)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("sandbox server failed to start")
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


def build_sandbox(scale: str = "tiny", seed: int = 7, state_dir: Path | None = None) -> Sandbox:
    """A sandbox for the company of this scale and seed; with ``state_dir``, what is written to
    it is kept there across restarts. Credentials are fresh for every run, so none is committed."""
    return Sandbox(generate_company(scale=scale, seed=seed), crm_access_token=secrets.token_urlsafe(24),
                   state_dir=state_dir)
