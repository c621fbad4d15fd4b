{#- One row per handoff with everything the funnel marts slice and count it by: its MQL month and
    quarter in the contract's reporting time zone, the person's acquisition source and program, the
    account segment, the lead score band, and how far down the funnel it got by as_of.

    Reaching a stage is cumulative (an opportunity has reached SQL even if the CRM skipped that
    lifecycle stage), so each stage's count is at most the one before it and every conversion
    rate stays within 0 and 1. -#}
with handoffs as (

    select * from {{ ref('fct_handoffs') }}

),

settings as (

    select * from {{ ref('contract_settings') }}

),

localized as (

    select
        handoffs.*,
        {{ local_timestamp('handoffs.mql_at', 'settings.reporting_time_zone') }} as mql_at_local
    from handoffs
    cross join settings

)

select
    localized.handoff_id,
    localized.person_id,
    localized.owner_id,
    localized.mql_at,
    cast({{ dbt.date_trunc('month', 'localized.mql_at_local') }} as date) as mql_month,
    cast({{ dbt.date_trunc('quarter', 'localized.mql_at_local') }} as date) as mql_quarter,
    coalesce(people.acquisition_source, 'unknown') as source,
    coalesce(people.acquisition_program_name, 'unknown') as campaign,
    coalesce(localized.segment, 'unknown') as segment,
    coalesce(people.lead_score_band, 'unknown') as lead_score_band,
    localized.sla_state,
    localized.business_minutes_to_first_touch,
    localized.business_minutes_to_decision,
    localized.decision,
    localized.rejection_reason,
    localized.outcome in ('sql', 'opportunity', 'won', 'lost') as reached_sql,
    localized.outcome in ('opportunity', 'won', 'lost') as reached_opportunity,
    localized.outcome = 'won' as is_won,
    localized.outcome = 'lost' as is_lost,
    localized.won_amount,
    {{ days_between('localized.mql_at', 'coalesce(localized.sql_at, localized.opportunity_at)') }} as days_to_sql,
    case when localized.outcome = 'won' then {{ days_between('localized.mql_at', 'deals.closed_at') }} end
        as days_to_won,
    localized.as_of

from localized
left join {{ ref('dim_people') }} as people on people.person_id = localized.person_id
left join {{ ref('stg_crm__deals') }} as deals on deals.deal_id = localized.deal_id
