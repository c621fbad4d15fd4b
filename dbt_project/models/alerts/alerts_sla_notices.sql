{#- One row per handoff that owes its owner a notice now: the most severe state its untouched
    first-touch clock has reached (at risk, breached, escalated). The outbox delivers each notice_key
    once, so a notice goes out once per handoff and state. -#}
with waiting as (

    select * from {{ ref('int_alerts__waiting_handoffs') }}
    where notice_kind is not null

)

select
    {{ dbt.concat(['handoff_id', "':'", 'notice_kind']) }} as notice_key,
    handoff_id,
    notice_kind,
    person_id,
    crm_contact_id,
    person_email,
    person_name,
    owner_id,
    owner_name,
    owner_email,
    team_name,
    policy,
    mql_reason,
    mql_at,
    due_at,
    as_of

from waiting
