-- Every won deal appears under every attribution model, its revenue credits adding up to its amount.
with conversions as (

    select distinct deal_id, amount from {{ ref('int_attribution__conversions') }}

),

attribution_models as (

    select distinct attribution_model from {{ ref('fct_attribution') }}

),

credited as (

    select deal_id, attribution_model, sum(revenue_credit) as revenue_credit
    from {{ ref('fct_attribution') }}
    group by 1, 2

)

select conversions.deal_id, attribution_models.attribution_model, conversions.amount, credited.revenue_credit
from conversions
cross join attribution_models
left join credited
    on credited.deal_id = conversions.deal_id
   and credited.attribution_model = attribution_models.attribution_model
where credited.revenue_credit is null or credited.revenue_credit <> conversions.amount
