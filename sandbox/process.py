"""The sandbox in a process of its own, for commands that need one only while they run."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipeline.settings import PROJECT_DIR, DataHome

START_TIMEOUT_S = 120


def sandbox_state_dir(home: DataHome, scale: str, seed: int, dataset: Path | None) -> Path:
    """Where the sandbox keeps this company's state, so every command finds the same one."""
    name = (
        f"dataset-{hashlib.sha1(str(dataset.resolve()).encode()).hexdigest()[:10]}"
        if dataset
        else f"{scale}-seed{seed}"
    )
    return home.root / "sandbox" / name


@contextlib.contextmanager
def sandbox_process(
    serve_options: list[str],
    connection_file: Path,
    environment: dict[str, str] | None = None,
    output: IO | int = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen]:
    """``handoff sandbox serve`` with ``serve_options`` until the block ends, once it has written
    ``connection_file``. It stops with the caller too, even if the caller is killed."""
    connection_file.unlink(missing_ok=True)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "sandbox",
            "serve",
            *serve_options,
            "--port",
            "0",
            "--connection-file",
            str(connection_file),
            "--stop-with-parent",
        ],
        cwd=PROJECT_DIR,
        start_new_session=True,
        stdout=output,
        env=environment,
    )
    try:
        _wait_for(connection_file, sandbox)
        yield sandbox
    finally:
        _stop(sandbox)
        connection_file.unlink(missing_ok=True)


def _wait_for(connection_file: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not connection_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with status {process.returncode} before serving")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox did not start within {START_TIMEOUT_S} s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
