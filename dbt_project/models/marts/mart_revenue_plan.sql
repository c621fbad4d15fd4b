{#- One row per quarter of the contract's plan: revenue won against the target and against where a
    straight line through the quarter says it should be by as_of; marketing's MQLs against its MQL
    target the same way (marketing's side of the SLA); and the reverse waterfall, the won deals,
    opportunities, SQLs and MQLs the revenue target takes at the trailing conversion rates.

    Trailing rates come from the four full quarters of MQL cohorts before the plan quarter (before
    the current quarter, for quarters not yet past: those are the latest complete ones). Recent
    cohorts are still converting, so the rates lean low and the needs lean high. -#}

{#- The waterfall walks back from the target, dividing by one conversion rate per stage; a zero or
    unknown rate leaves that need, and every one above it, unknown. -#}
{% set won_deals = 'quarters.revenue_target / nullif(trailing_rates.average_won_amount, 0)' %}
{% set opportunities = '(' ~ won_deals ~ ') / nullif(trailing_rates.opportunity_to_won_rate, 0)' %}
{% set sqls = '(' ~ opportunities ~ ') / nullif(trailing_rates.sql_to_opportunity_rate, 0)' %}
{% set mqls = '(' ~ sqls ~ ') / nullif(trailing_rates.mql_to_sql_rate, 0)' %}
{% set needs = {'won_deals_needed': won_deals, 'opportunities_needed': opportunities,
                'sqls_needed': sqls, 'mqls_needed': mqls} %}

with settings as (

    select * from {{ ref('contract_settings') }}

),

handoffs as (

    select * from {{ ref('int_funnel__handoff_cohorts') }}

),

plan as (

    select
        plan.quarter_start,
        cast({{ dbt.dateadd('month', 3, 'plan.quarter_start') }} as date) as quarter_end,
        plan.revenue_target,
        plan.mql_target,
        settings.reporting_time_zone,
        {{ local_timestamp(as_of_timestamp(), 'settings.reporting_time_zone') }} as as_of_local
    from {{ ref('contract_plan') }} as plan
    cross join settings

),

quarters as (

    select
        plan.*,
        {#- Linear pacing: the share of the quarter gone by as_of, 0 before it starts, 1 after it ends. -#}
        case
            when plan.as_of_local <= plan.quarter_start then 0
            when plan.as_of_local >= plan.quarter_end then 1
            else {{ divide_or_null(dbt.datediff('plan.quarter_start', 'plan.as_of_local', 'second'),
                                   dbt.datediff('plan.quarter_start', 'plan.quarter_end', 'second')) }}
        end as elapsed_share,
        least(
            plan.quarter_start,
            cast({{ dbt.date_trunc('quarter', 'plan.as_of_local') }} as date)
        ) as rates_window_end
    from plan

),

trailing_counts as (

    select
        quarters.quarter_start,
        count(handoffs.handoff_id) as mqls,
        count(case when handoffs.reached_sql then 1 end) as sqls,
        count(case when handoffs.reached_opportunity then 1 end) as opportunities,
        count(case when handoffs.is_won then 1 end) as won,
        sum(handoffs.won_amount) as won_revenue
    from quarters
    left join handoffs
        on handoffs.mql_quarter >= cast({{ dbt.dateadd('month', -12, 'quarters.rates_window_end') }} as date)
       and handoffs.mql_quarter < quarters.rates_window_end
    group by 1

),

trailing_rates as (

    select
        quarter_start,
        {{ divide_or_null('sqls', 'mqls') }} as mql_to_sql_rate,
        {{ divide_or_null('opportunities', 'sqls') }} as sql_to_opportunity_rate,
        {{ divide_or_null('won', 'opportunities') }} as opportunity_to_won_rate,
        {{ divide_or_null('won_revenue', 'won') }} as average_won_amount
    from trailing_counts

),

won_revenue as (

    select quarters.quarter_start, sum(deals.amount) as won_revenue
    from quarters
    inner join {{ ref('stg_crm__deals') }} as deals
        on deals.deal_stage = 'closedwon'
       and not deals.is_archived
       and deals.closed_at <= {{ as_of_timestamp() }}
       and {{ local_timestamp('deals.closed_at', 'quarters.reporting_time_zone') }} >= quarters.quarter_start
       and {{ local_timestamp('deals.closed_at', 'quarters.reporting_time_zone') }} < quarters.quarter_end
    group by 1

),

mqls as (

    select mql_quarter as quarter_start, count(*) as mqls
    from handoffs
    group by 1

)

select
    quarters.quarter_start,
    quarters.quarter_end,
    cast(quarters.elapsed_share as numeric(7, 4)) as elapsed_share,
    cast(quarters.revenue_target as numeric(18, 2)) as revenue_target,
    cast(coalesce(won_revenue.won_revenue, 0) as numeric(18, 2)) as won_revenue,
    cast(quarters.revenue_target * quarters.elapsed_share as numeric(18, 2)) as expected_revenue_to_date,
    cast({{ divide_or_null('coalesce(won_revenue.won_revenue, 0)', 'quarters.revenue_target * quarters.elapsed_share') }}
         as numeric(9, 4)) as revenue_pacing,
    quarters.mql_target,
    cast(coalesce(mqls.mqls, 0) as integer) as mqls,
    cast(quarters.mql_target * quarters.elapsed_share as numeric(12, 2)) as expected_mqls_to_date,
    cast({{ divide_or_null('coalesce(mqls.mqls, 0)', 'quarters.mql_target * quarters.elapsed_share') }}
         as numeric(9, 4)) as mql_pacing,
    cast(trailing_rates.mql_to_sql_rate as numeric(7, 4)) as trailing_mql_to_sql_rate,
    cast(trailing_rates.sql_to_opportunity_rate as numeric(7, 4)) as trailing_sql_to_opportunity_rate,
    cast(trailing_rates.opportunity_to_won_rate as numeric(7, 4)) as trailing_opportunity_to_won_rate,
    cast(trailing_rates.average_won_amount as numeric(18, 2)) as trailing_average_won_amount,
    {#- Rounded up, as a fraction of a deal is still a deal to find; first to six decimals, so the
        noise of floating-point division does not round 25 up to 26. -#}
    {% for name, expression in needs.items() %}
    cast(ceil(cast({{ expression }} as numeric(18, 6))) as integer) as {{ name }},
    {% endfor %}
    {{ as_of_timestamp() }} as as_of

from quarters
inner join trailing_rates on trailing_rates.quarter_start = quarters.quarter_start
left join won_revenue on won_revenue.quarter_start = quarters.quarter_start
left join mqls on mqls.quarter_start = quarters.quarter_start
