"""dlt source for a HubSpot-shaped CRM (v3 objects API, bearer token, ``after`` cursor paging)."""

from __future__ import annotations

from collections.abc import Iterator

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

PAGE_SIZE = 100  # HubSpot's maximum for list endpoints

# HubSpot sends every property value as a string; its property definitions say what it means.
PROPERTY_TYPES = {"number": "double", "datetime": "timestamp", "date": "date", "bool": "bool"}


def crm_client(base_url: str, access_token: str) -> RESTClient:
    return RESTClient(
        base_url=base_url,
        auth=BearerTokenAuth(access_token),
        paginator=JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after"),
        data_selector="results",
    )


def column_hints(definitions: list[dict]) -> dict:
    """A column for every defined property, typed as the CRM defines it, so a property that is
    empty everywhere still exists in the warehouse."""
    return {prop["name"]: {"data_type": PROPERTY_TYPES.get(prop["type"], "text"), "nullable": True}
            for prop in definitions}


def flatten(record: dict) -> dict:
    """One row per object: the envelope fields plus every property as its own column."""
    return {"id": record["id"], "created_at": record["createdAt"], "updated_at": record["updatedAt"],
            "archived": record["archived"], **record["properties"]}


@dlt.source(name="crm")
def crm_source(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value):
    client = crm_client(base_url, access_token)

    @dlt.resource(name="contacts", primary_key="id", write_disposition="merge",
                  columns={"id": {"data_type": "text", "nullable": False}})
    def contacts() -> Iterator:
        response = client.get("/crm/v3/properties/contacts")
        response.raise_for_status()
        definitions = response.json()["results"]
        hints = dlt.mark.make_hints(columns=column_hints(definitions))
        names = ",".join(prop["name"] for prop in definitions)
        for page in client.paginate("/crm/v3/objects/contacts",
                                    params={"limit": PAGE_SIZE, "properties": names}):
            yield dlt.mark.with_hints([flatten(record) for record in page], hints)

    return contacts
