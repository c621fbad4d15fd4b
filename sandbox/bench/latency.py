"""Latency, as a deployment sees it: Dagster's daemon and the intake service run against the served
company, marketing hands leads to sales one after another in the live sandbox, and each handover is
timed from the moment its webhook leaves until the write-back has put the handoff's SLA state on the
CRM record (the time the CRM recorded that write). Nobody touches those leads, so each handoff then
owes its owner an at-risk, a breached and an escalated notice: each is timed from the moment it falls
due (as the warehouse's clocks put it) to its arrival in a notice inbox.

Nothing is shortened for the measurement but the allowances: the deployment runs the project's
models under a contract of minutes (:func:`notice_contract`), with owners who work around the clock.
The sensors poll at their configured interval, runs wait in the instance's queue and pools, and the
SLA clock's schedule runs as it would.
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from pipeline.automation.jobs import IN_FLIGHT
from pipeline.services import RunningServices, daemon_service, free_port, intake_service
from sandbox.bench.company import ServedCompany
from sandbox.dataset import iso
from sandbox.inbox import Delivery, Inbox
from sandbox.live import LiveCompany
from sandbox.live_deployment import LIVE_SLA_POLICIES, round_the_clock_contract
from sandbox.webhooks import WebhookSettings

# What the write-back sets on a contact for a new handoff: its SLA clock.
FEEDBACK_PROPERTIES = ("handoff_sla_state", "handoff_sla_due_at")
HANDOVER_GAP_S = 3.0  # between two leads handed to sales
QUIET_POLL_S = 2.0
FEEDBACK_POLL_S = 0.5
NOTICE_POLL_S = 1.0
# The column of int_alerts__waiting_handoffs holding the moment each kind of notice falls due.
NOTICE_MOMENTS = {"at_risk": "at_risk_at", "breached": "due_at", "escalated": "escalated_at"}
# A minute after the breach: every kind of notice is timed, and the measurement waits no longer
# than it must for the last escalation.
NOTICE_ALERTS = {"escalate_after_minutes": 1, "lookback_hours": 1}


@dataclass(frozen=True)
class Handover:
    contact_id: int
    at: datetime  # when the lead was handed over and its webhook queued


def notice_contract(first_touch_minutes: int) -> Callable[[dict], dict]:
    """The benchmark's contract: a first touch due ``first_touch_minutes`` after each handover, in the
    business time of owners working around the clock, and escalations a minute after the breach."""
    policies = [policy | {"first_touch_minutes": first_touch_minutes} for policy in LIVE_SLA_POLICIES]
    return lambda contract: round_the_clock_contract(contract, policies, NOTICE_ALERTS)


@contextlib.contextmanager
def deployment(served: ServedCompany, settings: dict[str, str]) -> Iterator[str]:
    """The daemon and the intake service on the served company's data home, with ``settings`` on top
    of its environment; yields the intake's URL."""
    dagster_config = served.home.dagster_home / "dagster.yaml"
    if not dagster_config.exists():
        raise RuntimeError(f"{dagster_config} is missing: sync the served company once before deploying on it")
    port = free_port()
    services = RunningServices(
        served.home,
        [daemon_service(), intake_service("127.0.0.1", port, served.connection_file)],
        {**served.environment(), **settings, "DAGSTER_HOME": str(served.home.dagster_home)},
    )
    try:
        services.start()
        yield f"http://127.0.0.1:{port}"
    finally:
        services.stop()


@contextlib.contextmanager
def company_sending_webhooks(served: ServedCompany, intake_url: str) -> Iterator[LiveCompany]:
    live = served.live_company(
        WebhookSettings(crm_url=f"{intake_url}/webhooks/crm", marketing_url=f"{intake_url}/webhooks/marketing")
    )
    live.webhooks.start()
    try:
        yield live
    finally:
        live.webhooks.stop()
        live.stop()


def wait_until_quiet(served: ServedCompany, settle_s: float, timeout_s: float) -> None:
    """Until the daemon's sensors run and no run has been queued or in flight for ``settle_s``: the
    sensors' first evaluations (the website's files are new to them) have started and finished their runs."""
    instance = dg.DagsterInstance.from_config(str(served.home.dagster_home))
    deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() - quiet_since < settle_s:
            if "SENSOR" not in instance.get_daemon_heartbeats() or instance.get_runs(
                filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1
            ):
                quiet_since = time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"after {timeout_s:.0f} s the daemon's sensors were not running or runs were "
                    f"still in flight; see the daemon's log in {served.home.logs}"
                )
            time.sleep(QUIET_POLL_S)
    finally:
        instance.dispose()


def hand_over_leads(live: LiveCompany, count: int, gap_s: float) -> list[Handover]:
    """``count`` leads handed to sales, one every ``gap_s`` seconds."""
    handovers = []
    for _ in range(count):
        started = time.monotonic()
        at = datetime.now(UTC)
        handovers.append(Handover(live.hand_over_a_lead(), at))
        time.sleep(max(0.0, gap_s - (time.monotonic() - started)))
    return handovers


def feedback_times(sandbox_database: Path, handovers: list[Handover]) -> dict[int, datetime]:
    """When the write-back first set each handed-over contact's SLA fields after its handover, by
    the CRM's property history."""
    since = iso(min(handover.at for handover in handovers))
    placeholders = ", ".join("?" for _ in handovers)
    with contextlib.closing(sqlite3.connect(sandbox_database, timeout=30)) as db:
        rows = db.execute(
            f"""select id, timestamp from crm_property_history
                where object_type = 'contacts' and source_type = 'INTEGRATION' and timestamp >= ?
                  and property in ({", ".join("?" for _ in FEEDBACK_PROPERTIES)}) and id in ({placeholders})""",
            [since, *FEEDBACK_PROPERTIES, *(handover.contact_id for handover in handovers)],
        ).fetchall()
    at_of = {handover.contact_id: iso(handover.at) for handover in handovers}
    first: dict[int, str] = {}
    for contact_id, stamp in rows:
        if stamp >= at_of[contact_id] and (contact_id not in first or stamp < first[contact_id]):
            first[contact_id] = stamp
    return {contact_id: datetime.fromisoformat(stamp.replace("Z", "+00:00")) for contact_id, stamp in first.items()}


def wait_for_feedback(
    served: ServedCompany, handovers: list[Handover], timeout_s: float, status: Callable[[str], None]
) -> dict[int, datetime]:
    """Until every handover's feedback is on its CRM record, or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        arrived = feedback_times(served.state_dir / "sandbox.sqlite", handovers)
        status(f"feedback on {len(arrived)} of {len(handovers)} handed-over contacts")
        if len(arrived) == len(handovers) or time.monotonic() > deadline:
            return arrived
        time.sleep(FEEDBACK_POLL_S)


def latencies_s(handovers: list[Handover], arrived: dict[int, datetime]) -> list[float]:
    return [
        (arrived[handover.contact_id] - handover.at).total_seconds()
        for handover in handovers
        if handover.contact_id in arrived
    ]


def last_notice_due(handovers: list[Handover], first_touch_minutes: int) -> datetime:
    """When the last handover's escalation falls due."""
    minutes = first_touch_minutes + NOTICE_ALERTS["escalate_after_minutes"]
    return max(handover.at for handover in handovers) + timedelta(minutes=minutes)


def sla_notices_received(deliveries: list[Delivery], handovers: list[Handover]) -> dict[str, Delivery]:
    """The handed-over contacts' SLA notices the JSON webhook brought, by key: the first of each, as
    a receiver drops a repeat by its key. The notice's link names the contact."""
    contacts = {str(handover.contact_id) for handover in handovers}
    received: dict[str, Delivery] = {}
    for delivery in deliveries:
        if (
            delivery.channel == "webhook"
            and delivery.kind in NOTICE_MOMENTS
            and delivery.key
            and (delivery.link or "").rsplit("/", 1)[-1] in contacts
        ):
            received.setdefault(delivery.key, delivery)
    return received


def wait_for_notices(
    inbox: Inbox, handovers: list[Handover], deadline: datetime, status: Callable[[str], None]
) -> dict[str, Delivery]:
    """Until every handover's escalation, the last notice it owes, is in the inbox, or ``deadline``."""
    while True:
        received = sla_notices_received(inbox.deliveries(), handovers)
        escalated = sum(delivery.kind == "escalated" for delivery in received.values())
        status(f"{len(received)} SLA notices in the inbox, {escalated} of {len(handovers)} escalations")
        if escalated >= len(handovers) or datetime.now(UTC) > deadline:
            return received
        time.sleep(NOTICE_POLL_S)


def lateness_s(received: dict[str, Delivery], moments: dict[str, str]) -> list[float]:
    """How long after its moment (naive UTC, by notice key) each notice arrived."""
    return [
        (delivery.received_at - datetime.fromisoformat(moments[key]).replace(tzinfo=UTC)).total_seconds()
        for key, delivery in received.items()
    ]


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile, interpolated between the nearest ranks (as numpy's default)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]
