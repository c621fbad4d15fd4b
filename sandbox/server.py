"""Run the sandbox over real HTTP on a local port, and publish how to reach it."""

from __future__ import annotations

import csv
import json
import os
import secrets
import socket
import threading
from pathlib import Path

import uvicorn

from sandbox.app import Sandbox, create_app
from sandbox.dataset import Dataset
from sandbox.faults import Faults
from sandbox.live import LiveSettings, SandboxBackground
from sandbox.simulation import generate
from sandbox.store import SandboxStore
from sandbox.webhooks import WebhookSender, WebhookSettings
from sandbox.website import Website

LISTEN_BACKLOG = 2048  # uvicorn's
OWNER_CALENDAR_COLUMNS = ("owner_id", "email", "time_zone", "country", "start_hour", "end_hour")


def write_owner_calendars(path: Path, dataset: Dataset, around_the_clock: bool = False) -> None:
    """The owners' business calendars as the company's ops team exports them, the CSV Handoff reads:
    the CRM's owners API has no time zones or working hours. ``around_the_clock``: every owner works
    0:00–24:00."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(OWNER_CALENDAR_COLUMNS)
        writer.writerows(
            (
                owner["id"],
                owner["email"],
                owner["timeZone"],
                owner["country"],
                0 if around_the_clock else owner["workingHours"]["start"],
                24 if around_the_clock else owner["workingHours"]["end"],
            )
            for owner in dataset.rows("owners")
        )
    partial.replace(path)


def write_connection_file(path: Path, connections: dict) -> None:
    """Write atomically and readable by the owner only: the file holds credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(connections, out, indent=2)
    partial.replace(path)


class SandboxServer:
    """The sandbox's HTTP server; ``port=0`` picks a free port."""

    def __init__(
        self,
        sandbox: Sandbox,
        host: str = "127.0.0.1",
        port: int = 0,
        live: LiveSettings | None = None,
        around_the_clock: bool = False,
    ):
        self.sandbox = sandbox
        self.live = live
        # Owners work every hour of the day, so SLA clocks turn whenever one watches (``handoff live``,
        # the benchmark's SLA notices).
        self.around_the_clock = around_the_clock
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        # Listening from now on, a client that learns the address (from the connection file, written
        # before the server runs) is queued until the server answers, rather than refused.
        self._socket.listen(LISTEN_BACKLOG)
        self.base_url = "http://{}:{}".format(*self._socket.getsockname())
        config = uvicorn.Config(create_app(sandbox), log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._background = SandboxBackground(
            sandbox, live, self.base_url, serving=lambda: self._server.started and not self._server.should_exit
        )
        self._thread: threading.Thread | None = None

    def connections(self) -> dict:
        return self.sandbox.connections(self.base_url)

    def publish(self, connection_file: Path) -> None:
        """Write how to reach the sandbox, pointing at the company's owner calendars written beside it."""
        calendars = connection_file.with_name(f"{connection_file.stem}-owner-calendars.csv")
        write_owner_calendars(calendars, self.sandbox.dataset, around_the_clock=self.around_the_clock)
        write_connection_file(
            connection_file, self.connections() | {"calendars": {"owner_calendars_file": calendars.name}}
        )

    def serve_forever(self) -> None:
        self._background.start()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._background.stop()

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
        self._background.stop()
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


def build_sandbox(
    state_dir: Path,
    scale: str = "tiny",
    seed: int = 7,
    dataset_dir: Path | None = None,
    faults: Faults | None = None,
    webhooks: WebhookSettings | None = None,
) -> Sandbox:
    """The sandbox whose state lives in ``state_dir``: reused when it is there (so what was written
    to it is kept across restarts), otherwise built from ``dataset_dir`` or from a company
    generated at this scale and seed. Credentials are fresh for every run, so none is committed."""
    database = state_dir / "sandbox.sqlite"
    if not database.exists():
        if dataset_dir is None:
            dataset_dir = state_dir / "dataset"
            generate(dataset_dir, scale=scale, seed=seed)
        SandboxStore.build(Dataset(dataset_dir), database)
    store = SandboxStore(database)
    dataset = Dataset(Path(store.query_one("select value from meta where key = 'dataset'")["value"]))
    return Sandbox(
        store,
        dataset,
        crm_access_token=secrets.token_urlsafe(24),
        faults=faults,
        marketing_client_id=secrets.token_urlsafe(16),
        marketing_client_secret=secrets.token_urlsafe(24),
        website=Website(write_key=secrets.token_urlsafe(24), events_dir=state_dir / "web-events"),
        webhooks=WebhookSender(
            webhooks or WebhookSettings(),
            crm_client_secret=secrets.token_urlsafe(32),
            marketing_secret=secrets.token_urlsafe(32),
        ),
    )
