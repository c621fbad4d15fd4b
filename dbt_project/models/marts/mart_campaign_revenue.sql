{#- Won revenue by campaign: one row per attribution model, channel and campaign, with the revenue
    and conversions the model credits to the campaign's touches, and the content downloads that
    preceded won deals. Per model the rows add up to all won revenue and all won deals: a deal
    with no touch in its window shows as the campaign "(unattributed)". -#}
with attribution as (

    select
        *,
        case when is_attributed then channel else '(unattributed)' end as channel_label,
        case when is_attributed then coalesce(campaign, '(no campaign)') else '(unattributed)' end as campaign_label
    from {{ ref('fct_attribution') }}

)

select
    attribution_model,
    channel_label as channel,
    campaign_label as campaign,
    program_id,
    cast(sum(revenue_credit) as decimal(18, 2)) as attributed_revenue,
    cast(sum(weight) as decimal(18, 12)) as attributed_conversions,
    count(distinct deal_id) as won_deals,
    count(distinct touchpoint_id) as touches,
    count(distinct case when is_content_download then touchpoint_id end) as content_downloads,
    count(distinct case when is_content_download then deal_id end) as won_deals_with_content_download

from attribution
group by 1, 2, 3, 4
