{#- One row per stage a person entered, re-entries kept (a rejected person who qualifies again
    enters mql a second time); a stage is left when the person's next one is entered.

    A table, not an incremental model: a late merge moves a person's whole history to another
    person id, a late CRM change (a decision, a deal) inserts a stage between two old ones and so
    changes the previous row's exit, and fct_handoffs is recomputed as of every run. Rebuilding
    only the people a batch touched would take finding them in every upstream model; rebuilding
    all is simpler and, at these sizes, cheap. -#}
with identifiers as (

    select * from {{ ref('int_identity__identifiers') }}

),

handoffs as (

    select * from {{ ref('fct_handoffs') }}

),

web_events as (

    select * from {{ ref('stg_web__events') }}

),

first_web_events as (

    select identifiers.person_id, min(web_events.occurred_at) as entered_at
    from web_events
    inner join identifiers
        on identifiers.identifier_type = 'anonymous_id' and identifiers.identifier = web_events.anonymous_id
    group by 1

),

{#- A person becomes known when any system first records who they are. -#}
identifications as (

    select identifiers.person_id, leads.created_at as identified_at
    from {{ ref('stg_marketing__leads') }} as leads
    inner join identifiers
        on identifiers.identifier_type = 'marketing_lead_id' and identifiers.identifier = leads.marketing_lead_id

    union all

    {# The lead's creation activity outlives a deleted lead and stands in for a missing timestamp. -#}
    select identifiers.person_id, activities.occurred_at
    from {{ ref('stg_marketing__activities') }} as activities
    inner join identifiers
        on identifiers.identifier_type = 'marketing_lead_id' and identifiers.identifier = activities.marketing_lead_id
    where activities.activity_type = 'New Lead'

    union all

    select identifiers.person_id, web_events.occurred_at
    from web_events
    inner join identifiers
        on identifiers.identifier_type = 'marketing_lead_id' and identifiers.identifier = web_events.marketing_lead_id

    union all

    select identifiers.person_id, contacts.created_at
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join identifiers
        on identifiers.identifier_type = 'crm_contact_id' and identifiers.identifier = contacts.crm_contact_id

),

first_identifications as (

    select person_id, min(identified_at) as entered_at
    from identifications
    group by 1

),

{#- An owner who accepted may still disqualify the person later in the handoff: they go back to
    nurture all the same (fct_handoffs keeps the first decision, accepted). -#}
recycles as (

    select handoffs.person_id, handoffs.handoff_id, min(history.changed_at) as entered_at
    from handoffs
    inner join {{ ref('int_handoffs__mql_events') }} as events on events.handoff_id = handoffs.handoff_id
    inner join {{ ref('stg_crm__property_history') }} as history
        on history.object_type = 'contacts'
       and history.property = 'hs_lead_status'
       and history.object_id = handoffs.crm_contact_id
       and history.changed_at > handoffs.decided_at
       and (events.next_mql_at is null or history.changed_at < events.next_mql_at)
    inner join {{ ref('contract_lead_statuses') }} as statuses
        on statuses.lead_status = history.property_value and statuses.decision = 'rejected'
    where handoffs.decision = 'accepted'
    group by 1, 2

),

closed_deals as (

    select
        handoffs.person_id,
        handoffs.handoff_id,
        case handoffs.outcome when 'won' then 'closed_won' else 'closed_lost' end as stage,
        deals.closed_at as entered_at
    from handoffs
    inner join {{ ref('stg_crm__deals') }} as deals on deals.deal_id = handoffs.deal_id
    where handoffs.outcome in ('won', 'lost')

),

transitions as (

    {#- Someone known before their first visit was never an anonymous visitor. -#}
    select
        first_web_events.person_id,
        cast(null as {{ dbt.type_string() }}) as handoff_id,
        'visitor' as stage,
        first_web_events.entered_at
    from first_web_events
    left join first_identifications on first_identifications.person_id = first_web_events.person_id
    where first_identifications.entered_at is null
       or first_web_events.entered_at < first_identifications.entered_at

    union all

    select person_id, cast(null as {{ dbt.type_string() }}), 'known', entered_at
    from first_identifications

    union all

    select person_id, handoff_id, 'mql', mql_at
    from handoffs

    union all

    select person_id, handoff_id, case decision when 'accepted' then 'sal' else 'rejected' end, decided_at
    from handoffs
    where decided_at is not null

    union all

    select person_id, handoff_id, 'rejected', entered_at
    from recycles

    union all

    select person_id, handoff_id, 'sql', sql_at
    from handoffs
    where sql_at is not null

    union all

    select person_id, handoff_id, 'opportunity', opportunity_at
    from handoffs
    where opportunity_at is not null

    union all

    select person_id, handoff_id, stage, entered_at
    from closed_deals

),

{#- Nothing after the as-of moment has happened yet (the same cut fct_handoffs makes). -#}
sequenced as (

    select
        transitions.person_id,
        transitions.stage,
        stages.stage_order,
        transitions.handoff_id,
        transitions.entered_at,
        row_number() over (
            partition by transitions.person_id
            order by transitions.entered_at, stages.stage_order, transitions.handoff_id
        ) as transition_number
    from transitions
    inner join {{ ref('contract_stages') }} as stages on stages.stage = transitions.stage
    where transitions.entered_at <= {{ as_of_timestamp() }}

)

select
    {{ dbt.hash(dbt.concat([
        'person_id', "'|'", 'stage', "'|'", dbt.cast('entered_at', dbt.type_string()), "'|'", "coalesce(handoff_id, '')"
    ])) }} as transition_id,
    person_id,
    transition_number,
    stage,
    stage_order,
    handoff_id,
    entered_at,
    lead(entered_at) over (partition by person_id order by transition_number) as exited_at

from sequenced
