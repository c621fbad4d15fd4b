"""CRM contacts and deals that change over a journey, keep their property history as it happens,
and are written once, in their final state."""

from __future__ import annotations

from sandbox.simulation.company import Company

TRACKED_PROPERTIES = {"lifecyclestage", "hs_lead_status", "hubspot_owner_id", "rejection_reason", "dealstage"}
DATE_PROPERTIES = {
    "contacts": ("createdate", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate"),
    "deals": ("createdate", "hs_lastmodifieddate"),
}


class CrmRecord:
    """A CRM contact or deal: property changes are kept as history as they happen."""

    __slots__ = ("company", "object_type", "id", "properties", "created", "updated", "archived_at", "merged_into")

    def __init__(self, company: Company, object_type: str, created: int, properties: dict):
        self.company = company
        self.object_type = object_type
        self.id = company.crm_id(object_type)
        self.created = self.updated = created
        self.archived_at: int | None = None
        self.merged_into: str | None = None
        created_name, _ = DATE_PROPERTIES[object_type]
        self.properties = {**properties, created_name: company.clock.stamp(created), "hs_object_id": self.id}

    def set(self, name: str, value: str | None, t: int, source: str) -> None:
        self.properties[name] = value
        self.updated = max(self.updated, t)
        if name in TRACKED_PROPERTIES:
            self.company.write(
                "crm_property_history",
                {
                    "objectType": self.object_type,
                    "id": self.id,
                    "property": name,
                    "value": value,
                    "timestamp": self.company.clock.stamp(t),
                    "sourceType": source,
                },
            )

    def write(self) -> None:
        _, modified_name = DATE_PROPERTIES[self.object_type]
        self.properties[modified_name] = self.company.clock.stamp(self.updated)
        self.company.crm_object(
            self.object_type, self.id, self.properties, self.created, self.updated, self.archived_at, self.merged_into
        )
