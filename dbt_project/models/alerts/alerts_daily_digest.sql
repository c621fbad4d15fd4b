{#- One row per owner and per team (for its manager) with handoffs still waiting for a first touch
    within the alert lookback: how many are open, at risk, breached and escalated, and the next due time. -#}
with waiting as (

    select
        handoffs.owner_id,
        handoffs.sla_state,
        handoffs.first_touch_due_at,
        notices.notice_kind
    from {{ ref('fct_handoffs') }} as handoffs
    cross join {{ ref('contract_settings') }} as settings
    left join {{ ref('alerts_sla_notices') }} as notices on notices.handoff_id = handoffs.handoff_id
    where handoffs.first_touch_at is null
      and handoffs.sla_state in ('open', 'at_risk', 'breached')
      and handoffs.decision is distinct from 'rejected'
      and handoffs.first_touch_due_at >= {{ dbt.dateadd('hour', '-settings.alert_lookback_hours', 'handoffs.as_of') }}

),

by_owner as (

    select
        'owner' as recipient_kind,
        waiting.owner_id as recipient_id,
        owners.owner_name as recipient_name,
        owners.email as recipient_email,
        owners.team_name,
        {{ waiting_counts() }}
    from waiting
    left join {{ ref('dim_owners') }} as owners on owners.owner_id = waiting.owner_id
    group by 1, 2, 3, 4, 5

),

by_team as (

    select
        'team' as recipient_kind,
        coalesce(owners.team_name, 'no team') as recipient_id,
        coalesce(owners.team_name, 'no team') as recipient_name,
        cast(null as varchar) as recipient_email,
        coalesce(owners.team_name, 'no team') as team_name,
        {{ waiting_counts() }}
    from waiting
    left join {{ ref('dim_owners') }} as owners on owners.owner_id = waiting.owner_id
    group by 1, 2, 3, 4, 5

)

select * from by_owner
union all
select * from by_team
