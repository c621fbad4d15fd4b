{#- One row per dimension (all, source, campaign, lead score band) × dimension value × what sales
    decided (accepted; rejected, one row per reason; undecided): which leads sales takes and why
    it turns the others away. The accepted row's share of decisions is the acceptance rate; the
    rejected rows' shares split the rest by reason. -#}
{% set dimensions = ['source', 'campaign', 'lead_score_band'] %}

with handoffs as (

    select * from {{ ref('int_funnel__handoff_cohorts') }}

),

decisions as (

    {% for dimension in ['all'] + dimensions %}
    select
        '{{ dimension }}' as dimension,
        {{ "'all'" if dimension == 'all' else dimension }} as dimension_value,
        coalesce(decision, 'undecided') as decision,
        case when decision = 'rejected' then coalesce(rejection_reason, 'unspecified') end as rejection_reason
    from handoffs
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

counted as (

    select dimension, dimension_value, decision, rejection_reason, count(*) as handoffs
    from decisions
    group by 1, 2, 3, 4

),

totals as (

    select
        counted.*,
        cast(sum(handoffs) over (partition by dimension, dimension_value) as bigint) as dimension_handoffs,
        sum(case when decision <> 'undecided' then handoffs else 0 end)
            over (partition by dimension, dimension_value) as dimension_decisions
    from counted

)

select
    totals.dimension,
    totals.dimension_value,
    totals.decision,
    totals.rejection_reason,
    reasons.label as rejection_reason_label,
    reasons.recyclable as is_recyclable_rejection,
    totals.handoffs,
    totals.dimension_handoffs,
    cast({{ divide_or_null('totals.handoffs', 'totals.dimension_handoffs') }} as numeric(7, 4)) as share_of_handoffs,
    cast(case when totals.decision <> 'undecided'
              then {{ divide_or_null('totals.handoffs', 'totals.dimension_decisions') }} end as numeric(7, 4))
        as share_of_decisions

from totals
left join {{ ref('contract_rejection_reasons') }} as reasons on reasons.reason = totals.rejection_reason
