{#- One row per MQL cohort: period type (month, quarter) × period start × dimension (all, source,
    campaign, segment) × dimension value. A cohort is the handoffs whose MQL fell in the period;
    what they went on to do is counted whenever it happened (by as_of), so a young cohort's rates
    are still rising: `is_mature` says when they can be read as final. -#}
{% set periods = {'month': 1, 'quarter': 3} %}
{% set dimensions = ['source', 'campaign', 'segment'] %}

with handoffs as (

    select * from {{ ref('int_funnel__handoff_cohorts') }}

),

settings as (

    select * from {{ ref('contract_settings') }}

),

cohort_members as (

    {% for period_type in periods %}
    {% for dimension in ['all'] + dimensions %}
    select
        '{{ period_type }}' as period_type,
        mql_{{ period_type }} as period_start,
        '{{ dimension }}' as dimension,
        {{ "'all'" if dimension == 'all' else dimension }} as dimension_value,
        handoffs.*
    from handoffs
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

cohorts as (

    select
        period_type,
        period_start,
        dimension,
        dimension_value,
        count(*) as mqls,
        count(case when decision = 'accepted' then 1 end) as accepted,
        count(case when decision = 'rejected' then 1 end) as rejected,
        count(case when reached_sql then 1 end) as sqls,
        count(case when reached_opportunity then 1 end) as opportunities,
        count(case when is_won then 1 end) as won,
        count(case when is_lost then 1 end) as lost,
        coalesce(sum(won_amount), 0) as won_revenue,
        {{ percentile_cont('days_to_sql', 0.5) }} as mql_to_sql_days_p50,
        {{ percentile_cont('days_to_sql', 0.9) }} as mql_to_sql_days_p90,
        {{ percentile_cont('days_to_won', 0.5) }} as mql_to_won_days_p50,
        {{ percentile_cont('days_to_won', 0.9) }} as mql_to_won_days_p90,
        max(as_of) as as_of
    from cohort_members
    group by 1, 2, 3, 4

),

bounded as (

    select
        cohorts.*,
        cast(case period_type
            {% for period_type, months in periods.items() %}
            when '{{ period_type }}' then {{ dbt.dateadd('month', months, 'cohorts.period_start') }}
            {% endfor %}
        end as date) as period_end
    from cohorts

)

select
    bounded.period_type,
    bounded.period_start,
    bounded.period_end,
    bounded.dimension,
    bounded.dimension_value,
    bounded.mqls,
    bounded.accepted,
    bounded.rejected,
    bounded.sqls,
    bounded.opportunities,
    bounded.won,
    bounded.lost,
    cast(bounded.won_revenue as numeric(18, 2)) as won_revenue,
    {#- Acceptance is over decided handoffs: an undecided one is neither accepted nor rejected yet. -#}
    cast({{ divide_or_null('bounded.accepted', 'bounded.accepted + bounded.rejected') }} as numeric(7, 4))
        as acceptance_rate,
    cast({{ divide_or_null('bounded.sqls', 'bounded.mqls') }} as numeric(7, 4)) as mql_to_sql_rate,
    cast({{ divide_or_null('bounded.opportunities', 'bounded.sqls') }} as numeric(7, 4)) as sql_to_opportunity_rate,
    cast({{ divide_or_null('bounded.won', 'bounded.opportunities') }} as numeric(7, 4)) as opportunity_to_won_rate,
    cast({{ divide_or_null('bounded.won', 'bounded.mqls') }} as numeric(7, 4)) as mql_to_won_rate,
    cast(bounded.mql_to_sql_days_p50 as numeric(9, 2)) as mql_to_sql_days_p50,
    cast(bounded.mql_to_sql_days_p90 as numeric(9, 2)) as mql_to_sql_days_p90,
    cast(bounded.mql_to_won_days_p50 as numeric(9, 2)) as mql_to_won_days_p50,
    cast(bounded.mql_to_won_days_p90 as numeric(9, 2)) as mql_to_won_days_p90,
    {{ dbt.dateadd('day', 'settings.cohort_maturity_days', 'bounded.period_end') }}
        <= {{ local_timestamp('bounded.as_of', 'settings.reporting_time_zone') }} as is_mature,
    bounded.as_of

from bounded
cross join settings
