{#- One row per handoff that owes its owner a notice now: the most severe state its untouched
    first-touch clock has reached (at risk, breached, escalated). Only handoffs due within the
    contract's lookback are alerted on, so a first sync of years of history pages nobody. The outbox
    delivers each notice_key once, so a notice goes out once per handoff and state. -#}
with handoffs as (

    select * from {{ ref('fct_handoffs') }}

),

settings as (

    select * from {{ ref('contract_settings') }}

),

waiting as (

    select
        handoffs.*,
        case
            when handoffs.sla_state = 'at_risk' then 'at_risk'
            when handoffs.as_of >= {{ dbt.dateadd('minute', 'settings.alert_escalate_after_minutes',
                                                  'handoffs.first_touch_due_at') }} then 'escalated'
            else 'breached'
        end as notice_kind
    from handoffs
    cross join settings
    {# A rejection or a deletion after the due time leaves the clock breached, but nobody is
        waiting any more: only untouched, undecided or accepted handoffs page the owner. #}
    where handoffs.sla_state in ('at_risk', 'breached')
      and handoffs.first_touch_at is null
      and handoffs.decision is distinct from 'rejected'
      and handoffs.first_touch_due_at >= {{ dbt.dateadd('hour', '-settings.alert_lookback_hours', 'handoffs.as_of') }}

)

select
    {{ dbt.concat(['waiting.handoff_id', "':'", 'waiting.notice_kind']) }} as notice_key,
    waiting.handoff_id,
    waiting.notice_kind,
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
    waiting.first_touch_due_at as due_at,
    waiting.as_of

from waiting
left join {{ ref('dim_people') }} as people on people.person_id = waiting.person_id
left join {{ ref('dim_owners') }} as owners on owners.owner_id = waiting.owner_id
