{#- Exactly one fct_handoffs row per MQL event, counted afresh from the CRM's lifecycle history: a
    contact entering the contract's MQL stage from any other (or from none). Returns the events
    with no handoff or several, and handoffs matching no event. An MQL after `as_of` has not
    happened yet, and has no handoff. -#}
with history as (

    select
        object_id as crm_contact_id,
        property_value,
        changed_at,
        lag(property_value) over (partition by object_id order by changed_at) as previous_value
    from {{ ref('stg_crm__property_history') }}
    where object_type = 'contacts' and property = 'lifecyclestage'

),

mql_events as (

    select history.crm_contact_id, history.changed_at as mql_at
    from history
    cross join {{ ref('contract_settings') }} as settings
    where history.property_value = settings.mql_lifecycle_stage
      and (history.previous_value is null or history.previous_value <> settings.mql_lifecycle_stage)
      and history.changed_at <= {{ as_of_timestamp() }}

),

matched as (

    select
        coalesce(mql_events.crm_contact_id, handoffs.crm_contact_id) as crm_contact_id,
        coalesce(mql_events.mql_at, handoffs.mql_at) as mql_at,
        count(mql_events.mql_at) as mql_events,
        count(handoffs.handoff_id) as handoffs
    from mql_events
    full outer join {{ ref('fct_handoffs') }} as handoffs
        on handoffs.crm_contact_id = mql_events.crm_contact_id and handoffs.mql_at = mql_events.mql_at
    group by 1, 2

)

select * from matched where mql_events <> 1 or handoffs <> 1
