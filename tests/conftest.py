"""Every test session gets its own data home, so tests never touch a developer's `.handoff/`."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.settings import apply_environment_defaults

# Set before anything imports the code location (pipeline.definitions), which reads its settings at import.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="handoff-test-home-"))
os.environ["HANDOFF_HOME"] = str(SESSION_HOME)
os.environ.pop("HANDOFF_CONNECTION_FILE", None)
for name in ("HANDOFF_CRM_BASE_URL", "HANDOFF_CRM_ACCESS_TOKEN"):
    os.environ.pop(name, None)
# The tests load with dlt and build with dbt as the commands do, with the same tool settings.
apply_environment_defaults()


LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items):
    """Each test is marked by its layer's folder (`pytest -m unit` runs the quick part); the
    end-to-end tests, which run the whole graph, are also `slow`."""
    for item in items:
        layer = next((part for part in item.path.parts if part in LAYERS), None)
        if layer:
            item.add_marker(layer)
        if layer == "e2e":
            item.add_marker("slow")


def pytest_configure(config):
    """Before the workers start (the suite runs on every core): write the contract's seeds and parse
    dbt's manifest once, where every worker finding them missing on a fresh clone would write them at once."""
    if not hasattr(config, "workerinput"):
        from pipeline.settings import load_settings
        from pipeline.transform.assets import dbt_project

        dbt_project(load_settings())


@pytest.fixture(scope="session")
def company_now():
    """The moment the generated companies are simulated up to: a Monday morning just after Europe left
    summer time, so calendars must cross the change. Generated as of the hour the suite runs, a
    company's counts (live contacts, open leads) would change with the clock."""
    return datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, company_now):
    """The tiny company (seed 7) as of ``company_now``, generated once per test session (per worker)."""
    from sandbox.simulation import generate

    folder = tmp_path_factory.mktemp("tiny-dataset")
    generate(folder, scale="tiny", seed=7, now=company_now)
    return folder


@pytest.fixture(scope="session")
def clean_tiny_dataset(tmp_path_factory, company_now):
    """The tiny company (seed 7) as of ``company_now`` without malformed records, so a full sync
    passes the quality gate every time; generated once per test session (per worker)."""
    from sandbox.simulation import generate

    folder = tmp_path_factory.mktemp("clean-tiny-dataset")
    generate(folder, scale="tiny", seed=7, now=company_now, malformed_share=0)
    return folder


# Enough malformed records in the tiny company that each kind of defect appears, on contacts and leads.
MALFORMED_SHARE_FOR_TESTS = 0.3


@pytest.fixture(scope="session")
def malformed_tiny_dataset(tmp_path_factory, company_now):
    """The tiny company (seed 7) as of ``company_now`` with a malformed record for nearly a third of
    its known people: the same company as ``clean_tiny_dataset`` otherwise, so the same handoffs."""
    from sandbox.simulation import generate

    folder = tmp_path_factory.mktemp("malformed-tiny-dataset")
    generate(folder, scale="tiny", seed=7, now=company_now, malformed_share=MALFORMED_SHARE_FOR_TESTS)
    return folder


@dataclass(frozen=True)
class MarketoCompany:
    """A hand-made Marketo company (``folder``, a dataset folder), small enough that every expectation
    on it is exact. Leads 1-7 (1 "ava@acme.com" an MQL, 5 deleted, 6 and 7 sharing "dup@hooli.com"),
    a New Lead activity for each, 20 engagements, one lead status change (id 50), one delete (id 60),
    programs 1001-1003, and four program memberships (three of them in 1001)."""

    folder: Path
    now: datetime
    activities: tuple[dict, ...]

    @staticmethod
    def in_listing_order(activities) -> list[int]:
        """The activities' ids in the order Marketo lists them: by activity date, then id."""
        return [a["id"] for a in sorted(activities, key=lambda a: (a["activityDate"], a["id"]))]


def _marketo_lead(lead_id: int, email: str, first: str, last: str, status: str, **extra) -> dict:
    created = f"2025-01-0{lead_id + 1}T09:00:00.000Z"
    return {
        "id": lead_id,
        "email": email,
        "firstName": first,
        "lastName": last,
        "company": email.split("@")[1].split(".")[0].title(),
        "leadScore": 10 * lead_id,
        "leadStatus": status,
        "leadSource": "Website",
        "createdAt": created,
        "updatedAt": created,
        **extra,
    }


@pytest.fixture(scope="session")
def marketo_company(tmp_path_factory) -> MarketoCompany:
    """The hand-made Marketo company, written once per test session (per worker); the marketing
    stand-in's tests and the Marketo SDK's tests serve it."""
    from marketo_api import marketo_activity

    from sandbox.dataset import DatasetWriter, iso

    engagement_types = (1, 2, 6, 7, 10, 11, 22, 104)
    leads = [
        _marketo_lead(1, "ava@acme.com", "Ava", "Brooks", "MQL"),
        _marketo_lead(2, "liam@globex.io", "Liam", "Carter", "Lead"),
        _marketo_lead(3, "mia@initech.de", "Mia", "Schneider", "Lead"),
        _marketo_lead(4, "noah@hooli.com", "Noah", "Wilson", "Lead"),
        _marketo_lead(5, "zoe@wonka.fr", "Zoe", "Martin", "Lead", deletedAt="2025-03-10T12:00:00.000Z"),
        _marketo_lead(6, "dup@hooli.com", "Dee", "Upton", "Lead"),
        _marketo_lead(7, "dup@hooli.com", "Dee", "Upton", "Lead"),
    ]
    # Ids do not follow dates on purpose: listings must order by activity date, then id.
    activities = [
        *(
            marketo_activity(
                100 + lead["id"], lead["id"], 12, lead["createdAt"], attributes=(("Source Type", "Web form fill"),)
            )
            for lead in leads
        ),
        *(
            marketo_activity(
                number + 1,
                number % 4 + 1,
                engagement_types[number % 8],
                iso(datetime(2025, 1, 10, 10, tzinfo=UTC) + timedelta(days=4 * number)),
                primary=(900 + number, f"asset-{number}"),
            )
            for number in range(20)
        ),
        # Same moment as engagement 8 (Feb 7): the id breaks the tie.
        marketo_activity(
            50,
            1,
            13,
            "2025-02-07T10:00:00.000Z",
            primary=(57, "Lead Status"),
            attributes=(("New Value", "MQL"), ("Old Value", "Lead"), ("Reason", "Score reached 40")),
        ),
        marketo_activity(
            60, 5, 37, "2025-03-10T12:00:00.000Z", primary=(5, "Zoe Martin"), attributes=(("Remove from CRM", False),)
        ),
    ]
    programs = [
        {
            "id": 1001,
            "name": "Webinar: Pipeline 101",
            "type": "Event",
            "channel": "Webinar",
            "status": "",
            "createdAt": "2025-01-01T08:00:00.000Z",
            "updatedAt": "2025-01-15T08:00:00.000Z",
        },
        {
            "id": 1002,
            "name": "Nurture: Onboarding",
            "type": "Engagement",
            "channel": "Nurture",
            "status": "on",
            "createdAt": "2025-01-01T08:00:00.000Z",
            "updatedAt": "2025-02-20T08:00:00.000Z",
        },
        {
            "id": 1003,
            "name": "Content: ROI guide",
            "type": "Default",
            "channel": "Content",
            "status": "",
            "createdAt": "2025-01-01T08:00:00.000Z",
            "updatedAt": "2025-03-05T08:00:00.000Z",
        },
    ]
    members = [
        {
            "programId": 1001,
            "leadId": 1,
            "progressionStatus": "Attended",
            "membershipDate": "2025-01-16T10:00:00.000Z",
            "reachedSuccess": True,
            "updatedAt": "2025-01-21T10:00:00.000Z",
        },
        {
            "programId": 1001,
            "leadId": 2,
            "progressionStatus": "Registered",
            "membershipDate": "2025-01-17T10:00:00.000Z",
            "reachedSuccess": False,
            "updatedAt": "2025-01-18T10:00:00.000Z",
        },
        {
            "programId": 1001,
            "leadId": 3,
            "progressionStatus": "Attended",
            "membershipDate": "2025-01-18T10:00:00.000Z",
            "reachedSuccess": True,
            "updatedAt": "2025-02-02T10:00:00.000Z",
        },
        {
            "programId": 1002,
            "leadId": 4,
            "progressionStatus": "Member",
            "membershipDate": "2025-02-20T10:00:00.000Z",
            "reachedSuccess": False,
            "updatedAt": "2025-02-20T10:00:00.000Z",
        },
    ]
    now = datetime(2025, 4, 1, tzinfo=UTC)
    folder = tmp_path_factory.mktemp("marketo-company")
    with DatasetWriter(folder, scale="custom", seed=None, now=now) as dataset:
        dataset.write_all("marketing_leads", leads)
        dataset.write_all("marketing_activities", activities)
        dataset.write_all("marketing_programs", programs)
        dataset.write_all("marketing_program_members", members)
    return MarketoCompany(folder, now, tuple(activities))


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
                        receiver.posts.append(
                            {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                        )
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


@pytest.fixture
def state_store():
    """An operational store of the test's own, in memory, migrated to the newest schema."""
    from pipeline.state import StateStore

    store = StateStore("sqlite://")
    store.migrate()
    yield store
    store.dispose()


# The warehouses Handoff runs on; the end-to-end tests run once on each.
WAREHOUSE_TARGETS = ("duckdb", "postgres")


@pytest.fixture(scope="session")
def target_environment(new_postgres_database):
    """The variables of a data home on a target: DuckDB with the operational store in SQLite beside
    it, or PostgreSQL with the operational store in a PostgreSQL database of its own."""

    def variables(target: str, home: Path) -> dict[str, str]:
        settings = {"HANDOFF_HOME": str(home), "HANDOFF_DBT_TARGET": target}
        if target == "postgres":
            settings["HANDOFF_PG_DATABASE"] = new_postgres_database()
            settings["HANDOFF_STATE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{new_postgres_database()}"
        return settings

    return variables


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` set for the block, and the whole environment as it was afterwards (what the block
    set itself, such as ``DAGSTER_HOME`` by ``DataHome.prepare``, included)."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module", params=WAREHOUSE_TARGETS)
def target_home(request, target_environment, tmp_path_factory):
    """A data home of the module's own on each warehouse target in turn, prepared, with the
    environment naming it while the module's tests run: a module that uses it runs once per target."""
    from pipeline.settings import DataHome

    with environment(target_environment(request.param, tmp_path_factory.mktemp(f"home-{request.param}"))):
        yield DataHome.from_env().prepare()


def _processes_with_home(home: Path) -> list[str]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"HANDOFF_HOME={home}\0".encode() in environ.read_bytes() + b"\0":
                found.append(environ.parent.name)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


@pytest.fixture
def processes_with_home():
    """Lists the processes whose environment names a data home: what a long-running command
    (`handoff up`, `handoff live`) started, and their children."""
    return _processes_with_home
