"""What a user sees in a browser after the demo: the Dagster UI shows the demo's run and no failed run
for two minutes, the marts' headline numbers are drawn in their asset's Plots view, and the report
draws every chart without a console error. Headless Debian chromium driven by Playwright; screenshots
of what was checked are kept in ``$HANDOFF_TEST_ARTIFACTS`` (default ``test-artifacts/``), a folder per
test."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from pipeline.report import CHARTS
from pipeline.services import free_port
from pipeline.settings import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("HANDOFF_TEST_ARTIFACTS", PROJECT_DIR / "test-artifacts"))
HANDOFF = [sys.executable, "-m", "pipeline.cli"]
DEMO_TIMEOUT_S = 600
UI_START_TIMEOUT_S = 180
NO_FAILED_RUN_WATCH_S = 120
# Pages draw once their data has arrived: the longest the browser is given to show something.
SHOWN_WITHIN_S = 30

# Headline numbers the demo's marts carry (pipeline/transform/headlines.py), by asset.
PLOTTED_HEADLINES = {
    "marts/fct_handoffs": (
        "sla_met_rate",
        "first_touch_business_minutes_p50",
        "first_touch_business_minutes_p90",
        "acceptance_rate",
    ),
    "marts/mart_revenue_plan": (
        "current_quarter/mqls",
        "current_quarter/mql_target",
        "current_quarter/won_revenue",
        "current_quarter/revenue_target",
    ),
}
FAILED_RUNS_QUERY = """
{ runsOrError(filter: {statuses: [FAILURE]}) { __typename ... on Runs { results { runId jobName } } } }
"""
DAEMONS_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
CODE_LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
# Opaque pixels of a strong colour: a plotted series. Dagster draws axes, grid and labels in greys,
# so a plot without a point has none.
SERIES_PIXELS = """(canvas) => {
  const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let series = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [red, green, blue, alpha] = data.slice(i, i + 4);
    if (alpha > 200 && Math.max(red, green, blue) - Math.min(red, green, blue) > 96) series++;
  }
  return series;
}"""
# Plotly draws each bar, histogram bin and funnel stage as a path in a `.point`; an empty one (a zero
# value) has no area.
DRAWN_MARKS = """(chart) => [...chart.querySelectorAll('.point path')].filter((mark) => {
  const box = mark.getBBox();
  return box.width > 0 && box.height > 0;
}).length"""

T = TypeVar("T")


@dataclass(frozen=True)
class Demo:
    """The demo's data home and the Dagster run it made."""

    home: Path
    run_id: str


def handoff(args: list[str], home: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*HANDOFF, *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout)


def graphql(ui: str, query: str) -> dict:
    response = httpx.post(f"{ui}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def polled(read: Callable[[], T], done: Callable[[T], bool], within_s: float = SHOWN_WITHIN_S) -> T:
    """What ``read`` returns once ``done`` with it, or at the deadline, for the caller to assert on."""
    deadline = time.monotonic() + within_s
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


def drawn(element: Locator, count_script: str) -> int:
    """What ``count_script`` counts in ``element`` once it counts anything, or 0 at the deadline."""
    return polled(lambda: element.evaluate(count_script), lambda count: count > 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """`make demo`'s command, on the tiny company, in a data home of the module's own."""
    home = tmp_path_factory.mktemp("demo-home")
    result = handoff(["demo", "--scale", "tiny"], home, timeout=DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    run = re.search(r"Dagster run ([0-9a-f-]{36})", result.stdout)
    assert run, result.stdout
    return Demo(home, run[1])


@pytest.fixture(scope="module")
def dagster_ui(demo) -> Iterator[str]:
    """`handoff ui` on the demo's data home, its code location loaded: the UI's address."""
    port = free_port()
    log = demo.home / "logs" / "ui.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        ui = subprocess.Popen(
            [*HANDOFF, "ui", "--port", str(port)],
            cwd=PROJECT_DIR,
            env={**os.environ, "HANDOFF_HOME": str(demo.home)},
            stdout=output,
            stderr=subprocess.STDOUT,
            # A session of its own, so the stop reaches the webserver and daemon `dagster dev` starts; and
            # Ctrl-C's default action: started with Ctrl-C ignored, as a background job's children are,
            # `dagster dev` would ignore it and SIGTERM alike.
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    address = f"http://127.0.0.1:{port}"
    try:

        def code_location() -> dict | None:
            try:
                [entry] = graphql(address, CODE_LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            except httpx.HTTPError:
                return None
            return entry

        location = polled(
            code_location,
            lambda entry: ui.poll() is not None or (entry or {}).get("loadStatus") == "LOADED",
            UI_START_TIMEOUT_S,
        )
        assert ui.poll() is None and location and location["loadStatus"] == "LOADED", log.read_text()
        assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
        # A first visitor is asked to join Dagster's community in a dialog over the page; the instance
        # keeps the answer, given here once as the dialog's Skip would.
        graphql(address, "mutation { setNuxSeen }")
        yield address
    finally:
        # Ctrl-C, as in a terminal: `dagster dev` stops what it started and removes its temporary files.
        os.killpg(ui.pid, signal.SIGINT)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"No {CHROMIUM}: `make browser` installs Debian's chromium (`make test` does it first)")
    with sync_playwright() as playwright:
        # Containers often give /dev/shm a few MB, too little for chromium's renderers.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield opened
    opened.close()


@pytest.fixture
def artifacts(request) -> Path:
    """The test's screenshot folder, emptied of an earlier run's."""
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def headline_plot(page: Page, label: str) -> Locator:
    """The plot titled ``label``: the nearest block around the title that holds a canvas."""
    return page.locator(f'xpath=//span[normalize-space()="{label}"]/ancestor::div[.//canvas][1]')


def runs_listed(runs_page: Page) -> list[str]:
    """The rows of the Runs page, as text: Dagster lists runs in a virtualized table of blocks."""
    return runs_page.locator('[class*="VirtualizedTable_row"]').all_inner_texts()


def rows_with(rows: list[str], text: str) -> list[str]:
    return [row for row in rows if text in row]


@pytest.mark.timeout(DEMO_TIMEOUT_S + UI_START_TIMEOUT_S + NO_FAILED_RUN_WATCH_S + 180)
def test_after_the_demo_the_ui_shows_no_failed_run_for_two_minutes_and_plots_the_headline_numbers(
    demo, dagster_ui, context, artifacts
):
    runs_page = context.new_page()
    runs_page.goto(f"{dagster_ui}/runs")
    watch_ends = time.monotonic() + NO_FAILED_RUN_WATCH_S
    shown = polled(lambda: runs_listed(runs_page), lambda rows: bool(rows_with(rows, demo.run_id[:8])))
    assert rows_with(rows_with(shown, demo.run_id[:8]), "Success"), shown

    # While the Runs page stays open (it refreshes itself), the headline plots in a second tab.
    asset_page = context.new_page()
    for asset, headlines in PLOTTED_HEADLINES.items():
        asset_page.goto(f"{dagster_ui}/assets/{asset}")
        asset_page.get_by_role("button", name="Plots").click()
        for label in headlines:
            plot = headline_plot(asset_page, label)
            expect(plot, f"{asset} plots no {label}").to_be_attached(timeout=SHOWN_WITHIN_S * 1000)
            plot.scroll_into_view_if_needed()
            assert drawn(plot.locator("canvas"), SERIES_PIXELS) > 0, f"{asset}: the {label} plot draws no point"
            plot.screenshot(path=artifacts / f"{asset.replace('/', '.')}-{label.replace('/', '.')}.png")

    while time.monotonic() < watch_ends:
        rows = runs_listed(runs_page)
        assert rows_with(rows, "Failure") == [], rows
        assert graphql(dagster_ui, FAILED_RUNS_QUERY)["runsOrError"]["results"] == []
        runs_page.wait_for_timeout(5000)
    runs_page.reload()
    rows = polled(lambda: runs_listed(runs_page), lambda rows: bool(rows_with(rows, demo.run_id[:8])))
    runs_page.screenshot(path=artifacts / "runs.png")
    assert rows_with(rows, demo.run_id[:8]) and rows_with(rows, "Failure") == [], rows
    assert graphql(dagster_ui, FAILED_RUNS_QUERY)["runsOrError"]["results"] == []
    # No failed run means something only if the daemon was there to start runs.
    daemons = graphql(dagster_ui, DAEMONS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    healthy = {daemon["daemonType"] for daemon in daemons if daemon["healthy"]}
    assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= healthy, daemons


@pytest.mark.timeout(DEMO_TIMEOUT_S + 180)
def test_the_report_of_the_demo_draws_every_chart_in_the_browser_without_console_errors(demo, context, artifacts):
    report = artifacts / "funnel.html"
    written = handoff(["report", "--out", str(report)], demo.home, timeout=300)
    assert written.returncode == 0, written.stdout + written.stderr

    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url) if request.url.startswith("http") else None)
    page.goto(report.as_uri())

    assert polled(page.locator(".js-plotly-plot").count, lambda charts: charts == len(CHARTS)) == len(CHARTS)
    for position in range(len(CHARTS)):
        chart = page.locator(f"#chart-{position}")
        title = page.locator("section", has=chart).locator("h2").inner_text()
        assert drawn(chart, DRAWN_MARKS) > 0, f"{title} draws nothing"
    page.screenshot(path=artifacts / "report.png", full_page=True)
    assert errors == []
    assert fetched == [], "the report reached for the network"
