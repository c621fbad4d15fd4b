"""The handoff: sales working an MQL in the owner's business time, from first touch to a decision and
maybe a deal, under the first-touch policy its reason sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.simulation.clock import DAY, HOUR
from sandbox.simulation.crm_records import CrmRecord
from sandbox.simulation.leads import Lead
from sandbox.simulation.owners import Owner
from sandbox.simulation.sampling import Weighted

if TYPE_CHECKING:  # a journey starts its person's handoffs
    from sandbox.simulation.journeys import Journey


@dataclass(frozen=True)
class Policy:
    """How soon, in the owner's business minutes, a handoff must get its first touch."""

    name: str
    minutes: int


POLICIES = {"demo_request": Policy("demo_request", 60), "score": Policy("mql", 480)}

# Each open stage: median days spent in it, and the base chance the deal is lost while in it.
DEAL_PATH = [
    ("appointmentscheduled", 6, 0.30),
    ("qualifiedtobuy", 10, 0.28),
    ("presentationscheduled", 12, 0.24),
    ("decisionmakerboughtin", 9, 0.16),
    ("contractsent", 7, 0.14),
]
CLOSED_LOST_REASONS = ["Chose a competitor", "No decision", "Budget", "Timing", "Missing integration"]

ATTEMPT_CHANNELS = Weighted([("calls", 55), ("emails", 35), ("tasks", 10)])
DISQUALIFICATION_REASONS = Weighted([("bad_timing", 40), ("no_budget", 35), ("bad_fit", 15), ("competitor", 10)])
MAX_ATTEMPTS = 6


class Handoff:
    """One person × one MQL event, worked by its owner in the owner's business time."""

    def __init__(self, person: Journey, lead: Lead, contact: CrmRecord, mql_at: int, reason: str):
        company = self.company = person.company
        self.person, self.lead, self.contact = person, lead, contact
        self.id = f"h{next(company.handoff_numbers)}"
        self.mql_at, self.reason, self.policy = mql_at, reason, POLICIES[reason]
        previous = company.owner_by_id.get(contact.properties["hubspot_owner_id"])
        keeps_owner = previous is not None and previous.team == "sdr" and company.rng.random() < 0.7
        self.owner = previous if keeps_owner else company.routing.assign("sdr", person.account.territory)
        self.due_at = self.owner.sla_calendar.advance(mql_at, self.policy.minutes * 60)
        self.first_touch_at: int | None = None
        self.first_touch: tuple[str, str] | None = None
        self.decision: str | None = None
        self.decided_at: int | None = None
        self.rejection_reason: str | None = None
        self.outcome = "none"
        self.deal: CrmRecord | None = None
        self.won_amount: int | None = None
        self.last_attempt: int | None = None

    @property
    def horizon(self) -> int:
        return self.person.horizon

    def _reach(self, stage: str) -> None:
        if self.contact is self.person.contact:
            self.person.stage = stage

    def _reaction(self) -> int:
        """Business seconds the owner takes to react: mostly within policy, with a long tail."""
        seconds = self.policy.minutes * 60 * 0.4 * self.owner.responsiveness * self.company.rng.lognormvariate(0, 1.0)
        return max(60, int(seconds))

    def work(self, rejection: str | None = None) -> int | None:
        """Play the handoff out; returns when the person goes back to marketing, or None."""
        company, rng, contact, owner = self.company, self.company.rng, self.contact, self.owner
        t = self.mql_at
        contact.set("lifecyclestage", "marketingqualifiedlead", t, "INTEGRATION")
        contact.set("hs_lead_status", "NEW", t, "INTEGRATION")
        contact.set("hubspot_owner_id", owner.id, t, "AUTOMATION_PLATFORM")
        if contact.properties["rejection_reason"] is not None:
            contact.set("rejection_reason", None, t, "AUTOMATION_PLATFORM")
        self.lead.change_status(t, "MQL", "Demo request" if self.reason == "demo_request" else "Score")
        self._reach("mql")
        if self.reason == "demo_request" and rng.random() < 0.8 and t + 300 <= self.horizon:
            # Marketing's automatic confirmation is logged on the contact, but it is no sales touch.
            company.engagement(
                "emails",
                company.marketing_user,
                contact.id,
                t + 120,
                t + 120,
                {
                    "hs_email_direction": "EMAIL",
                    "hs_email_subject": "Thanks for requesting a demo",
                    "hs_email_status": "SENT",
                },
            )
        rejection = rejection or self._gate_rejection()
        if rejection:
            reviewed = owner.working_calendar.advance(t, self._reaction())
            if reviewed is None or reviewed > self.horizon:
                return None
            self.decision, self.decided_at = "rejected", reviewed
            return self._disqualify(reviewed, rejection)
        if rng.random() < owner.never_touch_share:
            return None
        reaction = self._reaction()
        if rng.random() < 0.15:  # some owners mark the lead as worked before reaching out
            accepted = owner.working_calendar.advance(t, int(reaction * rng.uniform(0.2, 0.6)))
            if accepted is None or accepted > self.horizon:
                return None
            contact.set("hs_lead_status", "IN_PROGRESS", accepted, "CRM_UI")
            self.decision, self.decided_at = "accepted", accepted
            self._reach("sal")
        connected = self._reach_out(owner.working_calendar.advance(t, reaction))
        if connected is None:
            return None
        if connected == "no_response":
            gave_up = owner.working_calendar.advance(self.last_attempt, rng.randrange(HOUR, 8 * HOUR))
            return None if gave_up is None else self._disqualify(gave_up, "no_response")
        return self._discover(connected)

    def _gate_rejection(self) -> str | None:
        rng, person = self.company.rng, self.person
        if person.account.competitor and rng.random() < 0.85:
            return "competitor"
        if rng.random() < 0.45 * (1 - person.fit) ** 2:
            return "bad_fit"
        return None

    def _reach_out(self, first_attempt: int | None) -> int | str | None:
        """The owner's cadence of calls and e-mails; when the person answered, "no_response", or
        None when the story runs past the horizon."""
        company, rng, contact, owner = self.company, self.company.rng, self.contact, self.owner
        answer_chance = 0.18 + 0.25 * self.person.interest + (0.25 if self.reason == "demo_request" else 0)
        t = first_attempt
        for attempt in range(MAX_ATTEMPTS):
            if t is None or t + 30 * 60 > self.horizon:  # room to log a call of up to 25 minutes
                return None
            channel, answered = ATTEMPT_CHANNELS.draw(rng), rng.random() < answer_chance
            if channel == "calls":
                duration = rng.randrange(3 * 60, 25 * 60) if answered else 0
                touch = company.engagement(
                    "calls",
                    owner,
                    contact.id,
                    t + duration + 30,
                    t,
                    {
                        "hs_call_title": f"Call with {self.person.first_name} {self.person.last_name}",
                        "hs_call_direction": "OUTBOUND",
                        "hs_call_status": "COMPLETED" if answered else "NO_ANSWER",
                        "hs_call_duration": str(duration * 1000),
                    },
                )
                answered_at = t + duration if answered else None
            elif channel == "emails":
                subject = (
                    "Your demo request"
                    if self.reason == "demo_request"
                    else f"Quick question about {self.person.account.name}"
                )
                touch = company.engagement(
                    "emails",
                    owner,
                    contact.id,
                    t,
                    t,
                    {"hs_email_direction": "EMAIL", "hs_email_subject": subject, "hs_email_status": "SENT"},
                )
                answered_at = t + 120 + int(rng.expovariate(1 / (5 * HOUR))) if answered else None
                if answered_at is not None and answered_at <= self.horizon:
                    company.engagement(
                        "emails",
                        owner,
                        contact.id,
                        answered_at,
                        answered_at,
                        {
                            "hs_email_direction": "INCOMING_EMAIL",
                            "hs_email_subject": f"Re: {subject}",
                            "hs_email_status": "SENT",
                        },
                    )
            else:
                touch = company.engagement(
                    "tasks",
                    owner,
                    contact.id,
                    t,
                    t,
                    {
                        "hs_task_subject": f"LinkedIn message to {self.person.first_name} {self.person.last_name}",
                        "hs_task_status": "COMPLETED",
                        "hs_task_type": "TODO",
                        "hs_task_completion_date": company.clock.stamp(t),
                    },
                )
                answered_at = None
            if attempt == 0:
                self.first_touch_at, self.first_touch = t, (channel, touch)
                if self.decision is None:
                    self.decision, self.decided_at = "accepted", t
                    self._reach("sal")
                contact.set("hs_lead_status", "ATTEMPTED_TO_CONTACT", t, "CRM_UI")
            self.last_attempt = t
            if answered_at is not None:
                if answered_at > self.horizon:
                    return None
                contact.set("hs_lead_status", "CONNECTED", answered_at, "CRM_UI")
                return answered_at
            t = owner.working_calendar.advance(t, rng.randrange(4 * HOUR, 20 * HOUR))
        if self.last_attempt + 60 * DAY <= self.horizon:
            company.engagement(
                "tasks",
                owner,
                contact.id,
                self.last_attempt,
                self.last_attempt + 60 * DAY,
                {
                    "hs_task_subject": f"Re-engage {self.person.first_name} {self.person.last_name}",
                    "hs_task_status": "NOT_STARTED",
                    "hs_task_type": "CALL",
                    "hs_task_completion_date": None,
                },
            )
        return "no_response"

    def _meeting(self, owner: Owner, booked: int, business_delay: int, title: str) -> tuple[int, str] | None:
        """Book and hold a meeting; its start and outcome, or None if it lies past the horizon."""
        start = owner.working_calendar.advance(booked, business_delay)
        if start is None or start - start % 900 + 1800 > self.horizon:
            return None
        start -= start % 900  # calendars book on the quarter hour
        rng = self.company.rng
        outcome = "NO_SHOW" if rng.random() < 0.15 else "COMPLETED"
        if start > self.company.clock.last - DAY:
            outcome = "SCHEDULED"  # held recently; the owner has not logged the outcome yet
        self.company.engagement(
            "meetings",
            owner,
            self.contact.id,
            booked,
            start,
            {
                "hs_meeting_title": title,
                "hs_meeting_outcome": outcome,
                "hs_meeting_start_time": self.company.clock.stamp(start),
                "hs_meeting_end_time": self.company.clock.stamp(start + 1800),
            },
        )
        return start, outcome

    def _discover(self, connected: int) -> int | None:
        """A discovery meeting, then the owner qualifies the person or not."""
        rng, person, owner = self.company.rng, self.person, self.owner
        booked = connected
        for _ in range(2):  # one no-show gets a second chance
            held = self._meeting(
                owner, booked, rng.randrange(4 * HOUR, 32 * HOUR), f"Discovery call: {person.account.name}"
            )
            if held is None or held[1] == "SCHEDULED":
                return None
            if held[1] == "COMPLETED":
                break
            booked = held[0] + 1800
        else:
            return self._disqualify(booked + rng.randrange(HOUR, DAY), "no_response")
        ended = held[0] + 1800
        self.contact.set("hs_lead_status", "IN_PROGRESS", ended, "CRM_UI")
        decided = owner.working_calendar.advance(ended, rng.randrange(30 * 60, 16 * HOUR))
        if decided is None or decided > self.horizon:
            return None
        hand_raise_bonus = 0.1 if self.reason == "demo_request" else 0
        sql_chance = 0.05 + 0.55 * person.fit * (0.6 + 0.4 * person.interest) + hand_raise_bonus
        if rng.random() >= sql_chance:
            return self._disqualify(decided, DISQUALIFICATION_REASONS.draw(rng))
        self.contact.set("lifecyclestage", "salesqualifiedlead", decided, "CRM_UI")
        self.outcome = "sql"
        self._reach("sql")
        return self._sell(decided) if rng.random() < 0.85 else None

    def _disqualify(self, t: int, reason: str) -> int | None:
        """The owner sets the lead unqualified with a reason; the person is recycled to nurture
        (competitors are set aside, duplicates wait to be merged)."""
        if t > self.horizon:
            return None
        self.contact.set("hs_lead_status", "UNQUALIFIED", t, "CRM_UI")
        self.contact.set("rejection_reason", reason, t, "CRM_UI")
        self.rejection_reason = reason
        self._reach("rejected")
        if reason == "duplicate":
            return None
        return self._recycle(t, "other" if reason == "competitor" else "lead")

    def _recycle(self, t: int, lifecycle_stage: str) -> int | None:
        """A nightly workflow moves the contact back; marketing resets the score and re-nurtures."""
        rng, person = self.company.rng, self.person
        recycled = t + rng.randrange(2 * HOUR, 2 * DAY)
        if recycled > self.horizon:
            return None
        self.contact.set("lifecyclestage", lifecycle_stage, recycled, "AUTOMATION_PLATFORM")
        if lifecycle_stage == "other":
            return None
        self.lead.change_status(recycled, "Recycled", "Recycled by sales")
        self.lead.change_score(recycled, 5 * round(8 * person.fit) - self.lead.score, "Recycled: score reset")
        self.lead.progress(self.company.catalog.recycled_nurture, recycled, "Member")
        person.nurture, person.nurture_position = self.company.catalog.recycled_nurture, 0
        return recycled

    def _sell(self, qualified: int) -> int | None:
        """An account executive opens a deal and works it through the pipeline to a close."""
        company, rng, person, contact = self.company, self.company.rng, self.person, self.contact
        executive = company.routing.assign("ae", person.account.territory)
        created = executive.working_calendar.advance(qualified, rng.randrange(HOUR, 24 * HOUR))
        if created is None or created > self.horizon:
            return None
        amount = int(12_000 * (person.account.employees / 100) ** 0.45 * rng.lognormvariate(0, 0.35)) // 500 * 500
        deal = self.deal = CrmRecord(
            company,
            "deals",
            created,
            {
                "dealname": f"{person.account.name} – New business",
                "amount": str(amount),
                "pipeline": "default",
                "dealtype": "newbusiness",
                "closedate": None,
                "closed_lost_reason": None,
                "hubspot_owner_id": executive.id,
            },
        )
        person.deals.append(deal)
        deal.set("dealstage", "appointmentscheduled", created, "CRM_UI")
        company.associate("deals", deal.id, "contacts", contact.id)
        company.associate("deals", deal.id, "companies", person.account.id)
        contact.set("hubspot_owner_id", executive.id, created, "CRM_UI")
        contact.set("lifecyclestage", "opportunity", created, "CRM_UI")
        contact.set("hs_lead_status", "OPEN_DEAL", created, "CRM_UI")
        self.outcome = "opportunity"
        self._reach("opportunity")
        t = created
        for index, (stage, median_days, loss_chance) in enumerate(DEAL_PATH):
            if stage == "presentationscheduled":
                self._meeting(executive, t, rng.randrange(2 * HOUR, 16 * HOUR), f"Demo: {person.account.name}")
            elif stage == "contractsent":
                company.engagement(
                    "emails",
                    executive,
                    contact.id,
                    t,
                    t,
                    {
                        "hs_email_direction": "EMAIL",
                        "hs_email_subject": f"Order form for {person.account.name}",
                        "hs_email_status": "SENT",
                    },
                )
            t = executive.working_calendar.advance(
                t + int(median_days * DAY * rng.lognormvariate(0, 0.5)), rng.randrange(HOUR)
            )
            if t is None or t > self.horizon:
                return None
            if rng.random() < loss_chance * (1.8 - person.fit):
                deal.set("dealstage", "closedlost", t, "CRM_UI")
                deal.properties.update(
                    closedate=company.clock.stamp(t), closed_lost_reason=rng.choice(CLOSED_LOST_REASONS)
                )
                self.outcome = "lost"
                self._reach("closed_lost")
                return self._recycle(t + rng.randrange(DAY, 14 * DAY), "lead") if rng.random() < 0.5 else None
            deal.set("dealstage", DEAL_PATH[index + 1][0] if index + 1 < len(DEAL_PATH) else "closedwon", t, "CRM_UI")
        deal.properties["closedate"] = company.clock.stamp(t)
        contact.set("lifecyclestage", "customer", t, "AUTOMATION_PLATFORM")
        self.outcome, self.won_amount = "won", amount
        self._reach("closed_won")
        return None

    def truth(self) -> dict:
        clock = self.company.clock
        stamp = clock.stamp
        touched = self.first_touch_at
        return {
            "handoffId": self.id,
            "personId": self.person.person_id,
            "crmContactId": self.contact.id,
            "marketingLeadId": self.lead.id,
            "ownerId": self.owner.id,
            "mqlAt": stamp(self.mql_at),
            "mqlReason": self.reason,
            "policy": self.policy.name,
            "policyMinutes": self.policy.minutes,
            "firstTouchDueAt": None if self.due_at is None or self.due_at > clock.last else stamp(self.due_at),
            "firstTouchDelayMinutes": None
            if touched is None
            else round(self.owner.sla_calendar.between(self.mql_at, touched) / 60, 2),
            "firstTouchAt": None if touched is None else stamp(touched),
            "firstTouchType": self.first_touch[0] if self.first_touch else None,
            "firstTouchId": self.first_touch[1] if self.first_touch else None,
            "decision": self.decision,
            "decidedAt": None if self.decided_at is None else stamp(self.decided_at),
            "rejectionReason": self.rejection_reason,
            "outcome": self.outcome,
            "dealId": self.deal.id if self.deal else None,
            "wonAmount": self.won_amount,
        }
