{#- One row per owner × month of MQL (reporting time zone): how that owner's handoffs fared against
    the SLA, as of as_of. The owner is the one at the handoff, so a reassigned lead stays on the
    books of whoever it was handed to. Counts add up to a team; medians and percentiles do not. -#}
with handoffs as (

    select * from {{ ref('int_funnel__handoff_cohorts') }}

),

owners as (

    select * from {{ ref('dim_owners') }}

),

performance as (

    select
        mql_month as period_month,
        owner_id,
        count(*) as handoffs,
        count(case when sla_state = 'met' then 1 end) as met,
        count(case when sla_state = 'breached' then 1 end) as breached,
        count(case when sla_state = 'at_risk' then 1 end) as at_risk,
        count(case when sla_state = 'open' then 1 end) as open,
        count(case when sla_state = 'cancelled' then 1 end) as cancelled,
        {{ percentile_cont('business_minutes_to_first_touch', 0.5) }} as first_touch_business_minutes_p50,
        {{ percentile_cont('business_minutes_to_first_touch', 0.9) }} as first_touch_business_minutes_p90,
        {{ percentile_cont('business_minutes_to_decision', 0.5) }} as decision_business_minutes_p50,
        max(as_of) as as_of
    from handoffs
    group by 1, 2

)

select
    performance.period_month,
    performance.owner_id,
    owners.owner_name,
    owners.team_name,
    performance.handoffs,
    performance.met,
    performance.breached,
    performance.at_risk,
    performance.open,
    performance.cancelled,
    {#- Of the clocks that have stopped (met or breached); open and cancelled ones have no verdict. -#}
    cast({{ divide_or_null('performance.met', 'performance.met + performance.breached') }} as numeric(7, 4))
        as met_rate,
    cast(performance.first_touch_business_minutes_p50 as numeric(12, 2)) as first_touch_business_minutes_p50,
    cast(performance.first_touch_business_minutes_p90 as numeric(12, 2)) as first_touch_business_minutes_p90,
    cast(performance.decision_business_minutes_p50 as numeric(12, 2)) as decision_business_minutes_p50,
    performance.as_of

from performance
left join owners on owners.owner_id = performance.owner_id
