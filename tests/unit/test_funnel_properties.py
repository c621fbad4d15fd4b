"""What the funnel reads of the raw CRM tables is loaded even when a user narrows the properties.

Every property name of the CRM's catalogue that a staging model, the record flags or a raw suite
mentions must be among the properties the CRM source always loads: narrowing would otherwise drop
a column a model selects, and the build would fail on the user's warehouse, not here.
"""

import re

import pytest

from pipeline.ingest.crm import FUNNEL_PROPERTIES, HISTORY_PROPERTIES, OBJECT_TYPES, loaded_properties
from pipeline.quality.gx import read_suite, suite_columns
from pipeline.settings import DBT_PROJECT_DIR, EXPECTATIONS_DIR
from sandbox.crm_catalogue import EXTRA_PROPERTIES
from sandbox.crm_schema import CATALOG

MODELS = DBT_PROJECT_DIR / "models"
READERS = {
    "contacts": ["staging/crm/stg_crm__contacts.sql", "quality/quality_record_flags.sql"],
    "companies": ["staging/crm/stg_crm__companies.sql"],
    "deals": ["staging/crm/stg_crm__deals.sql", "quality/quality_record_flags.sql"],
    **{kind: ["staging/crm/stg_crm__engagements.sql"] for kind in ("calls", "emails", "meetings", "tasks")},
}


def catalogue(object_type: str) -> set[str]:
    return set(CATALOG[object_type]) | {p.name for p in EXTRA_PROPERTIES.get(object_type, ())}


@pytest.mark.parametrize("object_type", list(OBJECT_TYPES))
def test_every_property_the_funnel_reads_is_always_loaded(object_type):
    words = set()
    for model in READERS[object_type]:
        # Comments and prose in quotes name no column; a quoted single word may ('email' in a macro call).
        sql = re.sub(r"\{#.*?#\}|--[^\n]*|'[^'\n]* [^'\n]*'", "", (MODELS / model).read_text(), flags=re.S)
        words |= set(re.findall(r"[a-z_][a-z0-9_]*", sql))
    suite = EXPECTATIONS_DIR / f"raw_crm__{object_type}.json"
    if suite.exists():
        words |= set(suite_columns(read_suite(suite)))
    always = {*FUNNEL_PROPERTIES[object_type], OBJECT_TYPES[object_type], *HISTORY_PROPERTIES.get(object_type, ())}
    assert (words & catalogue(object_type)) - always == set()


def test_narrowing_keeps_the_asked_and_the_funnels_properties_and_nothing_else():
    definitions = [{"name": name} for name in sorted(catalogue("contacts"))]
    assert loaded_properties("contacts", definitions, "") == definitions
    narrowed = {d["name"] for d in loaded_properties("contacts", definitions, " hs_analytics_num_visits, no_such")}
    assert narrowed == {"hs_analytics_num_visits", *FUNNEL_PROPERTIES["contacts"], "lastmodifieddate"} | set(
        HISTORY_PROPERTIES["contacts"]
    )
