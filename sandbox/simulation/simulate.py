"""Running the simulation: the company's year streamed into a dataset folder, and its key figures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sandbox.dataset import TABLES, Dataset, DatasetWriter, Manifest, parse_iso
from sandbox.simulation.company import Company
from sandbox.simulation.journeys import Journey

SCALES = {"tiny": 200, "small": 5_000, "medium": 100_000, "large": 1_000_000}
MALFORMED_SHARE = 0.0075  # of known people: their records carry one defect (see Journey._apply_defect)


def current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def generate(
    folder: Path,
    scale: str = "tiny",
    seed: int = 7,
    now: datetime | None = None,
    malformed_share: float = MALFORMED_SHARE,
) -> Manifest:
    """Simulate the company over the year before ``now`` and stream it into a dataset folder.

    ``malformed_share`` is the share of known people whose records carry one defect; changing it
    changes those defects and nothing else about the company."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    now = (now or current_hour()).astimezone(UTC)
    with DatasetWriter(folder, scale=scale, seed=seed, now=now) as writer:
        company = Company(writer, SCALES[scale], seed, now, malformed_share)
        company.write_setup()
        for number, (arrival, territory) in enumerate(company.arrivals(), start=1):
            Journey(company, number, arrival, territory).run()
    return Dataset(folder).manifest


def summarize(dataset: Dataset) -> dict[str, object]:
    """The company's key figures, from its ground truth and record counts."""
    now = parse_iso(dataset.manifest.now)
    people = Counter()
    for person in dataset.rows("truth_people"):
        people["people"] += 1
        people["known leads"] += person["marketingLeadId"] is not None
        people["deleted people"] += person["deleted"]
        people["malformed people"] += person["malformed"]
        people["people who signed up twice"] += len(person["crmContactIds"]) > 1 or len(person["marketingLeadIds"]) > 1
    handoffs, mql_people, delays = Counter(), set(), []
    for handoff in dataset.rows("truth_handoffs"):
        handoffs["handoffs"] += 1
        mql_people.add(handoff["personId"])
        handoffs[handoff["decision"]] += 1
        handoffs[handoff["outcome"]] += 1
        if handoff["firstTouchDelayMinutes"] is not None:
            delays.append(handoff["firstTouchDelayMinutes"])
        due = handoff["firstTouchDueAt"]
        cancelled = handoff["decision"] == "rejected" and (due is None or handoff["decidedAt"] <= due)
        if due is not None and parse_iso(due) <= now and not cancelled:
            handoffs["matured"] += 1
            delay = handoff["firstTouchDelayMinutes"]
            handoffs["within policy"] += delay is not None and delay <= handoff["policyMinutes"]
        handoffs["revenue"] += handoff["wonAmount"] or 0
    p50, p90 = np.percentile(delays, [50, 90]) if delays else (0.0, 0.0)
    share = lambda part, whole: round(100 * part / whole, 1) if whole else 0.0  # noqa: E731
    qualified = handoffs["sql"] + handoffs["opportunity"] + handoffs["won"] + handoffs["lost"]
    return {
        **people,
        "MQL people": len(mql_people),
        "handoffs": handoffs["handoffs"],
        "first touch p50 (business min)": round(float(p50), 1),
        "first touch p90 (business min)": round(float(p90), 1),
        "touched within policy %": share(handoffs["within policy"], handoffs["matured"]),
        "acceptance rate %": share(handoffs["accepted"], handoffs["accepted"] + handoffs["rejected"]),
        "MQL→SQL %": share(qualified, handoffs["handoffs"]),
        "deals won": handoffs["won"],
        "deals lost": handoffs["lost"],
        "win rate %": share(handoffs["won"], handoffs["won"] + handoffs["lost"]),
        "revenue (won)": handoffs["revenue"],
        **{f"records: {table}": dataset.manifest.counts.get(table, 0) for table in TABLES},
    }
