"""Every test session gets its own data home, so tests never touch a developer's `.handoff/`."""

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

# Set before anything imports the pipeline: the code location reads its data home at import.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="handoff-test-home-"))
os.environ["HANDOFF_HOME"] = str(SESSION_HOME)
os.environ.pop("HANDOFF_CONNECTION_FILE", None)
for name in ("HANDOFF_CRM_BASE_URL", "HANDOFF_CRM_ACCESS_TOKEN"):
    os.environ.pop(name, None)


def pytest_configure(config):
    """Before the workers start (the suite runs on every core): write the contract's seeds and parse
    dbt's manifest once, where every worker finding them missing on a fresh clone would write them at once."""
    if not hasattr(config, "workerinput"):
        from pipeline.transform.assets import dbt_project

        dbt_project()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The tiny company (seed 7), generated once per test session as of a fixed hour: generated as of
    the hour the suite runs, its counts (live contacts, open leads) would change with the clock."""
    from sandbox.simulation import generate

    folder = tmp_path_factory.mktemp("tiny-dataset")
    generate(folder, scale="tiny", seed=7, now=datetime(2026, 11, 2, 12, tzinfo=timezone.utc))
    return folder


@pytest.fixture
def crm_sandbox(tiny_dataset, tmp_path):
    """The tiny company's sandbox over real HTTP, fresh for each test."""
    from sandbox.server import SandboxServer, build_sandbox

    with SandboxServer(build_sandbox(tmp_path / "sandbox-state", dataset_dir=tiny_dataset)) as server:
        yield server


class _Receiver:
    """A local HTTP endpoint that keeps what is posted to it; ``fail_next`` answers that many 503s."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[dict] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= failing
                    if not failing:
                        receiver.posts.append({"path": self.path, "headers": dict(self.headers),
                                               "json": json.loads(body)})
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook_receiver():
    receiver = _Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def smtp_receiver():
    """A local SMTP server; its ``handler.messages`` are the mails it received."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Keep(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    from pipeline.services import free_port

    # A port of its own: the controller checks it is up by connecting to it.
    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def _ensure_postgres_running() -> None:
    import subprocess

    import psycopg2

    try:
        psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres", connect_timeout=3).close()
    except psycopg2.OperationalError:
        clusters = os.listdir("/etc/postgresql")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start"], check=True)


@pytest.fixture(scope="session")
def new_postgres_database():
    """Creates a PostgreSQL database of its own for each call (the server is started if it is
    stopped) and returns its name; every one is dropped at the end of the session."""
    import uuid

    import psycopg2

    _ensure_postgres_running()
    admin = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    admin.autocommit = True
    created = []

    def create() -> str:
        name = f"handoff_test_{uuid.uuid4().hex[:10]}"
        admin.cursor().execute(f"create database {name}")
        created.append(name)
        return name

    yield create
    for name in created:
        admin.cursor().execute(f"drop database {name} with (force)")
    admin.close()
