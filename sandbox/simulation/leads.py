"""Marketo leads: their activities (of Marketo's standard types), written as they happen, and the lead
with its program memberships, written once its story is over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.simulation.catalog import Program

if TYPE_CHECKING:  # a journey creates its person's leads
    from sandbox.simulation.journeys import Journey

# Marketo's standard activity types used here.
VISIT_WEBPAGE, FILL_OUT_FORM, SEND_EMAIL, EMAIL_DELIVERED, OPEN_EMAIL, CLICK_EMAIL = 1, 2, 6, 7, 10, 11
NEW_LEAD, CHANGE_DATA_VALUE, CHANGE_SCORE, MERGE_LEADS, DELETE_LEAD, CHANGE_PROGRAM_STATUS = 12, 13, 22, 32, 37, 104
ACTIVITY_TYPE_NAMES = {
    VISIT_WEBPAGE: "Visit Webpage",
    FILL_OUT_FORM: "Fill Out Form",
    SEND_EMAIL: "Send Email",
    EMAIL_DELIVERED: "Email Delivered",
    OPEN_EMAIL: "Open Email",
    CLICK_EMAIL: "Click Email",
    NEW_LEAD: "New Lead",
    CHANGE_DATA_VALUE: "Change Data Value",
    CHANGE_SCORE: "Change Score",
    MERGE_LEADS: "Merge Leads",
    DELETE_LEAD: "Delete Lead",
    CHANGE_PROGRAM_STATUS: "Change Status in Progression",
}


class Lead:
    """A Marketo lead: its activities are written as they happen, the lead and its program
    memberships once its story is over."""

    __slots__ = (
        "company",
        "person",
        "id",
        "user_id",
        "email",
        "created",
        "updated",
        "score",
        "status",
        "source",
        "acquisition_program",
        "unsubscribed",
        "deleted",
        "merged_into",
        "memberships",
        "created_missing",
    )

    def __init__(self, person: Journey, email: str, t: int, lead_source: str, program: Program, how: str):
        company = self.company = person.company
        self.person = person
        self.id = next(company.lead_ids)
        self.user_id = str(self.id)  # the website's Segment userId
        self.email = email
        self.created = self.updated = t
        self.score = 0
        self.status = "Nurture"
        self.source = lead_source
        self.acquisition_program = program
        self.unsubscribed = False
        self.deleted: int | None = None
        self.merged_into: int | None = None
        self.memberships: dict[int, dict] = {}
        self.created_missing = False
        detail = "Form Name" if how == "Web form fill" else "List Name"
        self.log(
            NEW_LEAD,
            t,
            None,
            program.name,
            [
                {"name": "Source Type", "value": how},
                {"name": detail, "value": program.name},
                {"name": "Lead Source", "value": lead_source},
            ],
        )

    def log(self, type_id: int, t: int, value_id: int | None, value: str | None, attributes: list[dict]) -> None:
        self.company.activity(self.id, t, type_id, value_id, value, attributes)

    def change_score(self, t: int, points: int, reason: str) -> None:
        old, self.score = self.score, self.score + points
        self.updated = max(self.updated, t)
        self.log(
            CHANGE_SCORE,
            t,
            None,
            "Lead Score",
            [
                {"name": "Change Value", "value": f"{points:+d}"},
                {"name": "New Value", "value": self.score},
                {"name": "Old Value", "value": old},
                {"name": "Reason", "value": reason},
            ],
        )

    def change_status(self, t: int, status: str, reason: str) -> None:
        self._changed(t, "Lead Status", status, self.status, reason)
        self.status = status

    def unsubscribe(self, t: int) -> None:
        self._changed(t, "Unsubscribed", True, False, "Unsubscribed via e-mail link")
        self.unsubscribed = True

    def _changed(self, t: int, field: str, new, old, reason: str) -> None:
        self.updated = max(self.updated, t)
        self.log(
            CHANGE_DATA_VALUE,
            t,
            None,
            field,
            [
                {"name": "New Value", "value": new},
                {"name": "Old Value", "value": old},
                {"name": "Reason", "value": reason},
                {"name": "Source", "value": "Marketo Flow Action"},
            ],
        )

    def progress(self, program: Program, t: int, status: str) -> None:
        member = self.memberships.get(program.id)
        old = member["progressionStatus"] if member else "Not in Program"
        if old == status:
            return
        success = status in program.success
        stamp = self.company.clock.stamp(t)
        if member is None:
            member = self.memberships[program.id] = {
                "programId": program.id,
                "leadId": self.id,
                "progressionStatus": status,
                "membershipDate": stamp,
                "reachedSuccess": False,
                "reachedSuccessDate": None,
                "acquiredBy": program is self.acquisition_program,
                "updatedAt": stamp,
            }
        member["progressionStatus"], member["updatedAt"] = status, stamp
        if success and not member["reachedSuccess"]:
            member["reachedSuccess"], member["reachedSuccessDate"] = True, stamp
        self.log(
            CHANGE_PROGRAM_STATUS,
            t,
            program.id,
            program.name,
            [
                {"name": "New Status", "value": status},
                {"name": "Old Status", "value": old},
                {"name": "Success", "value": success},
                {"name": "Acquired By", "value": member["acquiredBy"]},
            ],
        )

    def write(self) -> None:
        stamp, person = self.company.clock.stamp, self.person
        self.company.write(
            "marketing_leads",
            {
                "id": self.id,
                "email": self.email,
                "firstName": person.first_name,
                "lastName": person.last_name,
                "title": person.title,
                "company": person.account.name,
                "country": person.account.country,
                "leadScore": self.score,
                "leadStatus": self.status,
                "leadSource": self.source,
                "unsubscribed": self.unsubscribed,
                "acquisitionProgramId": self.acquisition_program.id,
                "createdAt": None if self.created_missing else stamp(self.created),
                "updatedAt": stamp(self.updated),
                "deletedAt": None if self.deleted is None else stamp(self.deleted),
                "mergedInto": self.merged_into,
            },
        )
        for member in self.memberships.values():
            self.company.write("marketing_program_members", member)
