{#- The notices waiting handoffs will owe after the run, one row per handoff and notice kind, with
    the moment it falls due: what the `sla_notices_due` sensor sends on time between runs, unless a
    change that may have touched the handoff is still to be loaded. -#}
with waiting as (

    select * from {{ ref('int_alerts__waiting_handoffs') }}

),

moments as (

    select handoff_id, 'at_risk' as notice_kind, at_risk_at as notify_at from waiting
    union all
    select handoff_id, 'breached' as notice_kind, due_at as notify_at from waiting
    union all
    select handoff_id, 'escalated' as notice_kind, escalated_at as notify_at from waiting

)

select
    {{ dbt.concat(['waiting.handoff_id', "':'", 'moments.notice_kind']) }} as notice_key,
    waiting.handoff_id,
    moments.notice_kind,
    moments.notify_at,
    waiting.person_id,
    waiting.crm_contact_id,
    waiting.person_email,
    waiting.person_name,
    waiting.owner_id,
    waiting.owner_name,
    waiting.owner_email,
    waiting.team_name,
    waiting.policy,
    waiting.mql_reason,
    waiting.mql_at,
    waiting.due_at,
    waiting.as_of

from moments
inner join waiting on waiting.handoff_id = moments.handoff_id
where moments.notify_at > waiting.as_of
