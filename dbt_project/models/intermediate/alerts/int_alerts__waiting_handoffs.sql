{#- One row per handoff still waiting for its first touch: untouched, not rejected, its clock open,
    at risk or breached, and due within the contract's alert lookback of the run (or later). With the
    moments its notices fall due, so they can be sent on time between runs: at risk (the contract's
    at-risk fraction of the allowance, in the owner's business time), breached (the due time) and
    escalated (`alerts.escalate_after_minutes` of wall time after it); and whom they name. -#}
with handoffs as (

    select * from {{ ref('fct_handoffs') }}

),

settings as (

    select * from {{ ref('contract_settings') }}

),

waiting as (

    select
        handoffs.*,
        {{ business_time_after('handoffs.owner_id', 'handoffs.mql_at',
                               'settings.at_risk_fraction * handoffs.first_touch_allowance_minutes') }} as at_risk_at,
        {{ dbt.dateadd('minute', 'settings.alert_escalate_after_minutes', 'handoffs.first_touch_due_at') }}
            as escalated_at
    from handoffs
    cross join settings
    {# A rejection or a deletion after the due time leaves the clock breached, but nobody is
        waiting any more: only untouched, undecided or accepted handoffs page the owner. #}
    where handoffs.sla_state in ('open', 'at_risk', 'breached')
      and handoffs.first_touch_at is null
      and handoffs.decision is distinct from 'rejected'
      and handoffs.first_touch_due_at >= {{ dbt.dateadd('hour', '-settings.alert_lookback_hours', 'handoffs.as_of') }}

)

select
    waiting.handoff_id,
    waiting.sla_state,
    case
        when waiting.sla_state = 'at_risk' then 'at_risk'
        when waiting.sla_state = 'breached' and waiting.as_of >= waiting.escalated_at then 'escalated'
        when waiting.sla_state = 'breached' then 'breached'
    end as notice_kind,
    waiting.person_id,
    waiting.crm_contact_id,
    waiting.email as person_email,
    nullif(trim({{ dbt.concat(["coalesce(people.first_name, '')", "' '", "coalesce(people.last_name, '')"]) }}), '')
        as person_name,
    waiting.owner_id,
    owners.owner_name,
    owners.email as owner_email,
    owners.team_name,
    waiting.policy,
    waiting.mql_reason,
    waiting.mql_at,
    waiting.at_risk_at,
    waiting.first_touch_due_at as due_at,
    waiting.escalated_at,
    waiting.as_of

from waiting
left join {{ ref('dim_people') }} as people on people.person_id = waiting.person_id
left join {{ ref('dim_owners') }} as owners on owners.owner_id = waiting.owner_id
