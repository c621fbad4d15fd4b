"""A simulated B2B company written as a sandbox dataset: behaviour, not random rows.

People arrive on the website from campaigns (or from tradeshows and list imports), browse in
sessions, may identify through a form and become marketing leads, are nurtured by e-mail and
scored, and on reaching the score threshold or asking for a demo are handed to sales: their CRM
contact gets lifecycle stage MQL and an owner, who touches, accepts or rejects them in the owner's
own business time. Accepted leads may become sales-qualified, get a deal and close it won or lost;
rejected and lost ones go back to nurture and may qualify again (a new handoff). A few people sign
up twice (duplicates, later merged), ask to be deleted, or carry a malformed record.

The company is deterministic from its seed and ``now``, is streamed person by person (never held
in memory as a whole), and keeps its own ground truth (``truth_people``, ``truth_handoffs``).

A person's story is in ``journeys`` and their handoffs to sales in ``handoffs``; what people share
(team, accounts, marketing catalog, record writers) is in ``company``; ``simulate`` runs it all.
"""

from sandbox.simulation.business_calendar import BusinessCalendar, local_days, working_intervals
from sandbox.simulation.clock import DAY, Clock
from sandbox.simulation.company import SIMULATED_DAYS
from sandbox.simulation.handoffs import POLICIES
from sandbox.simulation.leads import ACTIVITY_TYPE_NAMES
from sandbox.simulation.simulate import SCALES, generate, summarize

__all__ = [
    "ACTIVITY_TYPE_NAMES",
    "DAY",
    "POLICIES",
    "SCALES",
    "SIMULATED_DAYS",
    "BusinessCalendar",
    "Clock",
    "generate",
    "local_days",
    "summarize",
    "working_intervals",
]
