"""The long-running deployment: Dagster's webserver and daemon and the intake service, started
together and stopped together.

Each service runs in a session of its own, so a stop reaches everything it started (the
webserver's code server, the daemon's run workers) and a Ctrl-C in the terminal reaches only
``handoff up``, which then stops the services in order. Should ``handoff up`` itself be killed,
the kernel tells each service to stop too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipeline.settings import PROJECT_DIR, DataHome

START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    # Answers 2xx once the service is ready; None for a service without an HTTP endpoint.
    ready_url: str | None = None


def intake_service(host: str, port: int, connection_file: Path | None) -> Service:
    options = ["--connection-file", str(connection_file)] if connection_file else []
    return Service(
        "intake",
        [sys.executable, "-m", "pipeline.cli", "intake", "serve", "--host", host, "--port", str(port), *options],
        f"http://{host}:{port}/health",
    )


def _dagster_command(program: str, *options: str) -> list[str]:
    # Installed beside this interpreter, which need not be on PATH (a venv not activated).
    return [str(Path(sys.executable).parent / program), *options, "-w", str(PROJECT_DIR / "workspace.yaml")]


def daemon_service() -> Service:
    """Dagster's daemon: schedules, sensors and the run queue."""
    return Service("daemon", _dagster_command("dagster-daemon", "run"))


def webserver_service(host: str, port: int) -> Service:
    """Dagster's webserver: the UI and its GraphQL API."""
    return Service(
        "webserver",
        _dagster_command("dagster-webserver", "-h", host, "-p", str(port)),
        f"http://{host}:{port}/server_info",
    )


def deployment_services(
    host: str, webserver_port: int, intake_port: int, connection_file: Path | None
) -> list[Service]:
    return [
        webserver_service(host, webserver_port),
        daemon_service(),
        intake_service(host, intake_port, connection_file),
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _stop_when_parent_dies() -> None:
    """In the child, before it runs the service: SIGTERM it when ``handoff up`` dies, however it dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class RunningServices:
    """Services started in order, each logging to ``<data home>/logs/<name>.log``."""

    def __init__(self, home: DataHome, services: list[Service], environment: dict[str, str] | None = None):
        self.home = home
        self.services = services
        self.environment = environment  # None: this process's
        self.processes: dict[str, subprocess.Popen] = {}

    def log_file(self, service: Service) -> Path:
        return self.home.logs / f"{service.name}.log"

    def start(self, on_ready: Callable[[Service], None] = lambda _: None) -> None:
        self.home.logs.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            with open(self.log_file(service), "ab") as log:
                self.processes[service.name] = subprocess.Popen(
                    service.command,
                    cwd=PROJECT_DIR,
                    env=self.environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_stop_when_parent_dies,
                )
        for service in self.services:
            self._wait_until_ready(service)
            on_ready(service)

    def _wait_until_ready(self, service: Service) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while service.ready_url:
            self.raise_if_exited()
            try:
                if httpx.get(service.ready_url, timeout=2).is_success:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {service.name} did not answer within {START_TIMEOUT_S} s; see {self.log_file(service)}"
                )
            time.sleep(0.5)

    def raise_if_exited(self) -> None:
        """Raise, naming its log, when a service has exited."""
        for service in self.services:
            process = self.processes[service.name]
            if process.poll() is not None:
                raise RuntimeError(
                    f"the {service.name} exited with status {process.returncode}; see {self.log_file(service)}"
                )

    def watch(self, poll_s: float = 1.0) -> None:
        """Until one of the services exits (then raise) or the caller is interrupted."""
        while True:
            self.raise_if_exited()
            time.sleep(poll_s)

    def stop(self) -> None:
        """SIGTERM every service's whole session, then SIGKILL what is still there after the grace period."""
        for process in self.processes.values():
            _signal_session(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Children a service started may outlive it: its session still names them.
            _signal_session(process, signal.SIGKILL)
            process.wait()


def _signal_session(process: subprocess.Popen, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)
