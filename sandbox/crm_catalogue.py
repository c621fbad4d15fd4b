"""The rest of HubSpot's default property catalogue: the hundreds of properties a real portal
defines besides those the simulated company fills, so that clients read payloads of a realistic
width and find the properties they expect (the lifecycle and deal stage timestamps above all).

The names, types and groups follow HubSpot's default properties; most stay empty in the simulated
company, as many do in a real portal. The stage timestamps are computed from property history
(``CrmStore`` fills them), since clients read them instead of the history itself.
"""

from __future__ import annotations

from sandbox.crm_schema import LIFECYCLE_STAGES, P, PropertyDefinition

FIELD_TYPES = {"string": "text", "number": "number", "datetime": "date", "bool": "booleancheckbox"}


def _computed(name: str, label: str, kind: str, group: str) -> PropertyDefinition:
    """A property HubSpot computes: clients read it, none can set it."""
    return P(name, label, kind, FIELD_TYPES[kind], group, read_only=True)


def _props(group: str, kind: str, *names: str) -> tuple[PropertyDefinition, ...]:
    """Properties of one group and type, labelled from their names; HubSpot computes the ``hs_`` ones."""
    options = (("true", "True"), ("false", "False")) if kind == "bool" else ()
    return tuple(
        P(
            name,
            name.removeprefix("hs_").replace("_", " ").capitalize(),
            "enumeration" if kind == "bool" else kind,
            FIELD_TYPES[kind],
            group,
            options,
            read_only=name.startswith("hs_"),
        )
        for name in names
    )


STAGE_PROPERTY = {"contacts": "lifecyclestage", "deals": "dealstage"}  # whose history the timestamps come from


def stage_timestamp_names(object_type: str, stage: str) -> dict[str, tuple[str, ...]]:
    """The properties that say when a record entered and when it last left ``stage``."""
    if object_type == "contacts":
        return {
            "entered": (f"hs_v2_date_entered_{stage}", f"hs_lifecyclestage_{stage}_date"),
            "exited": (f"hs_v2_date_exited_{stage}",),
        }
    key = stage.replace("-", "_")
    return {
        "entered": (f"hs_v2_date_entered_{key}", f"hs_date_entered_{key}"),
        "exited": (f"hs_v2_date_exited_{key}", f"hs_date_exited_{key}"),
    }


def lifecycle_stage_timestamps() -> tuple[PropertyDefinition, ...]:
    """HubSpot's timestamps of each lifecycle stage: the current ``hs_v2_*`` family and the older
    ``hs_lifecyclestage_<stage>_date``."""
    definitions: list[PropertyDefinition] = []
    for stage, label in LIFECYCLE_STAGES:
        where, group = f"'{label} (Lifecycle Stage Pipeline)'", "contact_activity"
        definitions += [
            _computed(f"hs_v2_date_entered_{stage}", f"Date entered {where}", "datetime", group),
            _computed(f"hs_v2_date_exited_{stage}", f"Date exited {where}", "datetime", group),
            _computed(f"hs_v2_latest_time_in_{stage}", f"Latest time in {where}", "number", group),
            _computed(f"hs_v2_cumulative_time_in_{stage}", f"Cumulative time in {where}", "number", group),
            _computed(f"hs_lifecyclestage_{stage}_date", f"Became a {label} Date", "datetime", "contactinformation"),
        ]
    return tuple(definitions)


def deal_stage_timestamps(stages: list[tuple[str, str]]) -> tuple[PropertyDefinition, ...]:
    """HubSpot's timestamps of each deal stage of the portal's pipelines, by stage id."""
    definitions: list[PropertyDefinition] = []
    for stage_id, label in stages:
        key, group = stage_id.replace("-", "_"), "deal_activity"
        definitions += [
            _computed(f"hs_v2_date_entered_{key}", f"Date entered '{label}'", "datetime", group),
            _computed(f"hs_v2_date_exited_{key}", f"Date exited '{label}'", "datetime", group),
            _computed(f"hs_date_entered_{key}", f"Date entered '{label}' (legacy)", "datetime", group),
            _computed(f"hs_date_exited_{key}", f"Date exited '{label}' (legacy)", "datetime", group),
            _computed(f"hs_time_in_{key}", f"Time in '{label}'", "number", group),
        ]
    return tuple(definitions)


_ANALYTICS = (
    *_props(
        "analyticsinformation",
        "string",
        "hs_analytics_first_url",
        "hs_analytics_last_url",
        "hs_analytics_first_referrer",
        "hs_analytics_last_referrer",
        "hs_analytics_source_data_1",
        "hs_analytics_source_data_2",
        "hs_latest_source_data_1",
        "hs_latest_source_data_2",
        "hs_analytics_first_touch_converting_campaign",
        "hs_analytics_last_touch_converting_campaign",
    ),
    *_props(
        "analyticsinformation",
        "number",
        "hs_analytics_num_page_views",
        "hs_analytics_num_visits",
        "hs_analytics_num_event_completions",
        "hs_analytics_average_page_views",
        "hs_analytics_revenue",
    ),
    *_props(
        "analyticsinformation",
        "datetime",
        "hs_analytics_first_timestamp",
        "hs_analytics_last_timestamp",
        "hs_analytics_first_visit_timestamp",
        "hs_analytics_last_visit_timestamp",
        "hs_latest_source_timestamp",
    ),
)
_SALES_ACTIVITY = (
    *_props(
        "sales_properties",
        "datetime",
        "notes_last_contacted",
        "notes_last_updated",
        "notes_next_activity_date",
        "hs_last_sales_activity_timestamp",
        "hs_last_sales_activity_date",
        "hs_latest_meeting_activity",
        "hs_sales_email_last_replied",
        "hs_sales_email_last_opened",
        "hs_sales_email_last_clicked",
        "hubspot_owner_assigneddate",
        "hs_lastactivitydate",
    ),
    *_props("sales_properties", "number", "num_contacted_notes", "num_notes", "hs_num_open_deals"),
    *_props(
        "sales_properties",
        "string",
        "hs_all_owner_ids",
        "hs_all_team_ids",
        "hs_all_accessible_team_ids",
        "hubspot_team_id",
        "hs_user_ids_of_all_owners",
        "hs_last_sales_activity_type",
    ),
)

_CONTACT_EXTRA = (
    *_props(
        "contactinformation",
        "string",
        "address",
        "city",
        "state",
        "zip",
        "phone",
        "mobilephone",
        "fax",
        "website",
        "salutation",
        "industry",
        "annualrevenue",
        "numemployees",
        "degree",
        "field_of_study",
        "gender",
        "job_function",
        "marital_status",
        "military_status",
        "relationship_status",
        "school",
        "seniority",
        "work_email",
        "twitterhandle",
        "linkedinbio",
        "message",
        "hs_language",
        "hs_timezone",
        "hs_persona",
        "hs_buying_role",
        "hs_email_domain",
        "hs_additional_emails",
        "hs_calculated_phone_number",
        "hs_calculated_mobile_number",
        "hs_searchable_calculated_phone_number",
        "hs_whatsapp_phone_number",
        "hs_object_source",
        "hs_object_source_id",
        "hs_object_source_label",
        "hs_object_source_detail_1",
        "hs_object_source_detail_2",
        "ip_city",
        "ip_country",
        "ip_country_code",
        "ip_state",
        "ip_state_code",
        "ip_zipcode",
        "hs_legal_basis",
        "hs_content_membership_status",
        "hs_registered_member",
        "hs_predictivescoringtier",
        "first_conversion_event_name",
        "recent_conversion_event_name",
        "hs_marketable_status",
        "hs_marketable_reason_type",
        "hs_pipeline",
    ),
    *_props(
        "contactinformation",
        "datetime",
        "date_of_birth",
        "graduation_date",
        "start_date",
        "first_conversion_date",
        "recent_conversion_date",
        "first_deal_created_date",
        "recent_deal_close_date",
        "hs_marketable_until_renewal",
        "hs_date_entered_lead",
        "hs_date_exited_lead",
        "hs_time_to_move_from_lead_to_customer",
    ),
    *_props(
        "contactinformation",
        "number",
        "hubspotscore",
        "hs_predictivecontactscore_v2",
        "num_conversion_events",
        "num_unique_conversion_events",
        "num_associated_deals",
        "recent_deal_amount",
        "total_revenue",
        "hs_social_facebook_clicks",
        "hs_social_linkedin_clicks",
        "hs_social_twitter_clicks",
        "hs_social_num_broadcast_clicks",
        "hs_time_between_contact_creation_and_deal_creation",
        "hs_time_between_contact_creation_and_deal_close",
        "hs_count_is_worked",
        "hs_count_is_unworked",
    ),
    *_props(
        "emailinformation",
        "datetime",
        "hs_email_first_send_date",
        "hs_email_last_send_date",
        "hs_email_first_open_date",
        "hs_email_last_open_date",
        "hs_email_first_click_date",
        "hs_email_last_click_date",
        "hs_email_first_reply_date",
        "hs_email_last_reply_date",
    ),
    *_props(
        "emailinformation",
        "number",
        "hs_email_bounce",
        "hs_email_click",
        "hs_email_delivered",
        "hs_email_open",
        "hs_email_replied",
        "hs_email_sends_since_last_engagement",
    ),
    *_props(
        "emailinformation",
        "string",
        "hs_email_last_email_name",
        "hs_emailconfirmationstatus",
        "hs_email_hard_bounce_reason_enum",
    ),
    *_props("emailinformation", "bool", "hs_email_optout", "hs_email_quarantined", "hs_email_bad_address"),
    *_props("sales_properties", "bool", "hs_sequences_is_enrolled", "hs_is_unworked", "hs_is_contact"),
    *_ANALYTICS,
    *_SALES_ACTIVITY,
    *lifecycle_stage_timestamps(),
)

_COMPANY_EXTRA = (
    *_props(
        "companyinformation",
        "string",
        "address",
        "address2",
        "city",
        "state",
        "zip",
        "phone",
        "website",
        "description",
        "about_us",
        "founded_year",
        "is_public",
        "timezone",
        "type",
        "web_technologies",
        "linkedin_company_page",
        "linkedinbio",
        "twitterhandle",
        "facebook_company_page",
        "googleplus_page",
        "hs_ideal_customer_profile",
        "hs_is_target_account",
        "hs_object_source",
        "hs_object_source_id",
        "hs_object_source_label",
        "hs_logo_url",
        "hs_country_code",
        "hs_state_code",
        "hs_industry_group",
        "hs_parent_company_id",
        "lifecyclestage",
        "hs_lead_status",
        "hs_pipeline",
    ),
    *_props(
        "companyinformation",
        "number",
        "annualrevenue",
        "total_money_raised",
        "num_associated_contacts",
        "num_associated_deals",
        "num_contacted_notes",
        "num_notes",
        "hs_num_child_companies",
        "hs_num_open_deals",
        "hs_num_decision_makers",
        "hs_num_blockers",
        "hs_num_contacts_with_buying_roles",
        "hs_total_deal_value",
        "recent_deal_amount",
        "total_revenue",
        "hs_predictivecontactscore_v2",
    ),
    *_props(
        "companyinformation",
        "datetime",
        "closedate",
        "first_contact_createdate",
        "first_deal_created_date",
        "recent_deal_close_date",
        "hs_last_booked_meeting_date",
        "hs_last_logged_call_date",
        "hs_last_open_task_date",
        "hs_last_sales_activity_timestamp",
        "hs_date_entered_customer",
        "hs_date_entered_opportunity",
        "hs_date_entered_lead",
        "hubspot_owner_assigneddate",
        "notes_last_contacted",
        "notes_last_updated",
        "notes_next_activity_date",
    ),
    *_ANALYTICS,
)

_DEAL_EXTRA = (
    *_props(
        "dealinformation",
        "string",
        "description",
        "closed_won_reason",
        "hs_next_step",
        "hs_priority",
        "hs_deal_stage_probability_shadow",
        "hs_forecast_category",
        "hs_manual_forecast_category",
        "hs_object_source",
        "hs_object_source_id",
        "hs_object_source_label",
        "hs_analytics_source",
        "hs_analytics_source_data_1",
        "hs_analytics_source_data_2",
        "hs_campaign",
        "hs_all_owner_ids",
        "hs_all_team_ids",
        "hubspot_team_id",
        "deal_currency_code",
        "hs_line_item_global_term_hs_recurring_billing_period",
        "hs_tag_ids",
    ),
    *_props(
        "dealinformation",
        "number",
        "amount_in_home_currency",
        "hs_acv",
        "hs_arr",
        "hs_mrr",
        "hs_tcv",
        "hs_closed_amount",
        "hs_closed_amount_in_home_currency",
        "hs_deal_stage_probability",
        "hs_forecast_amount",
        "hs_forecast_probability",
        "hs_projected_amount",
        "hs_projected_amount_in_home_currency",
        "hs_days_to_close",
        "hs_num_associated_deal_splits",
        "hs_num_of_associated_line_items",
        "hs_num_target_accounts",
        "num_associated_contacts",
        "num_contacted_notes",
        "num_notes",
        "hs_exchange_rate",
        "hs_likelihood_to_close",
    ),
    *_props(
        "dealinformation",
        "datetime",
        "hs_closed_won_date",
        "hs_date_entered_closedwon",
        "hs_latest_meeting_activity",
        "hs_sales_email_last_replied",
        "hubspot_owner_assigneddate",
        "notes_last_contacted",
        "notes_last_updated",
        "notes_next_activity_date",
        "hs_analytics_latest_source_timestamp",
        "hs_lastactivitydate",
    ),
    *_props("dealinformation", "bool", "hs_is_closed", "hs_is_closed_won", "hs_is_deal_split", "hs_is_open_count"),
)

# Properties the portal defines for each object type beyond those the simulated company fills.
EXTRA_PROPERTIES: dict[str, tuple[PropertyDefinition, ...]] = {
    "contacts": _CONTACT_EXTRA,
    "companies": _COMPANY_EXTRA,
    "deals": _DEAL_EXTRA,
}
