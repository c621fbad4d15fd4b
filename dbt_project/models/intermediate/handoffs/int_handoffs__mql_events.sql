{#- One row per MQL event: a CRM contact entering the contract's MQL lifecycle stage. A re-MQL after
    recycling is a new event; the event lasts until the contact's next MQL. Owner, reason, segment
    and policy are fixed at the moment of the handoff: reassignment does not restart the clock. -#}
with settings as (

    select * from {{ ref('contract_settings') }}

),

lifecycle_changes as (

    select
        object_id as crm_contact_id,
        property_value as lifecycle_stage,
        changed_at,
        lag(property_value) over (partition by object_id order by changed_at) as previous_lifecycle_stage
    from {{ ref('stg_crm__property_history') }}
    where object_type = 'contacts' and property = 'lifecyclestage'

),

mql_events as (

    select
        lifecycle_changes.crm_contact_id,
        lifecycle_changes.changed_at as mql_at
    from lifecycle_changes
    cross join settings
    where lifecycle_changes.lifecycle_stage = settings.mql_lifecycle_stage
      and coalesce(lifecycle_changes.previous_lifecycle_stage, '') <> settings.mql_lifecycle_stage

),

windows as (

    select
        crm_contact_id,
        mql_at,
        lead(mql_at) over (partition by crm_contact_id order by mql_at) as next_mql_at
    from mql_events

),

owner_changes as (

    select object_id as crm_contact_id, property_value as owner_id, changed_at
    from {{ ref('stg_crm__property_history') }}
    where object_type = 'contacts' and property = 'hubspot_owner_id' and property_value is not null

),

owner_at_mql as (

    {#- The owner set at or before the MQL; failing that, the first one routing set after it. -#}
    select
        windows.crm_contact_id,
        windows.mql_at,
        owner_changes.owner_id,
        row_number() over (
            partition by windows.crm_contact_id, windows.mql_at
            order by case when owner_changes.changed_at <= windows.mql_at then 0 else 1 end,
                     case when owner_changes.changed_at <= windows.mql_at then owner_changes.changed_at end desc,
                     owner_changes.changed_at
        ) as nth
    from windows
    inner join owner_changes
        on owner_changes.crm_contact_id = windows.crm_contact_id
       and (windows.next_mql_at is null or owner_changes.changed_at < windows.next_mql_at)

),

people as (

    select identifier as crm_contact_id, person_id
    from {{ ref('int_identity__identifiers') }}
    where identifier_type = 'crm_contact_id'

),

hand_raises as (

    select distinct people.person_id, activities.occurred_at
    from {{ ref('stg_marketing__activities') }} as activities
    inner join {{ ref('contract_hand_raise_forms') }} as forms
        on forms.form_name = activities.primary_attribute_value
    inner join {{ ref('int_identity__identifiers') }} as people
        on people.identifier_type = 'marketing_lead_id' and people.identifier = activities.marketing_lead_id
    where activities.activity_type = 'Fill Out Form'

),

hand_raised as (

    select windows.crm_contact_id, windows.mql_at
    from windows
    inner join people on people.crm_contact_id = windows.crm_contact_id
    cross join settings
    inner join hand_raises
        on hand_raises.person_id = people.person_id
       and hand_raises.occurred_at <= windows.mql_at
       and hand_raises.occurred_at >= {{ dbt.dateadd('minute', '-1 * settings.hand_raise_window_minutes', 'windows.mql_at') }}
    group by 1, 2

),

{#- A contact's segment is its company's; with several companies, the largest one's. -#}
segments as (

    select
        associations.from_object_id as crm_contact_id,
        accounts.segment,
        row_number() over (
            partition by associations.from_object_id order by accounts.employees desc, accounts.crm_company_id asc
        ) as nth
    from {{ ref('stg_crm__associations') }} as associations
    inner join {{ ref('int_accounts__segments') }} as accounts
        on accounts.crm_company_id = associations.to_object_id
    where associations.from_object_type = 'contacts' and associations.to_object_type = 'companies'

),

classified as (

    select
        windows.crm_contact_id,
        people.person_id,
        windows.mql_at,
        windows.next_mql_at,
        owner_at_mql.owner_id,
        case when hand_raised.crm_contact_id is not null then 'hand_raise' else 'score' end as mql_reason,
        segments.segment
    from windows
    left join people on people.crm_contact_id = windows.crm_contact_id
    left join owner_at_mql
        on owner_at_mql.crm_contact_id = windows.crm_contact_id
       and owner_at_mql.mql_at = windows.mql_at
       and owner_at_mql.nth = 1
    left join hand_raised
        on hand_raised.crm_contact_id = windows.crm_contact_id and hand_raised.mql_at = windows.mql_at
    left join segments on segments.crm_contact_id = windows.crm_contact_id and segments.nth = 1

),

policies as (

    select
        classified.crm_contact_id,
        classified.mql_at,
        policies.policy,
        policies.first_touch_minutes,
        policies.decision_minutes,
        row_number() over (
            partition by classified.crm_contact_id, classified.mql_at order by policies.precedence
        ) as nth
    from classified
    inner join {{ ref('contract_sla_policies') }} as policies
        on (policies.mql_reason is null or policies.mql_reason = classified.mql_reason)
       and (policies.segment is null or policies.segment = classified.segment)

)

select
    {{ dbt.hash(dbt.concat(['classified.crm_contact_id', "'|'", dbt.cast('classified.mql_at', dbt.type_string())])) }}
        as handoff_id,
    classified.*,
    policies.policy,
    policies.first_touch_minutes,
    policies.decision_minutes

from classified
inner join policies
    on policies.crm_contact_id = classified.crm_contact_id
   and policies.mql_at = classified.mql_at
   and policies.nth = 1
