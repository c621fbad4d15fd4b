{#- What marketing automation should hold on each lead that was handed to sales: the sales outcome
    marketing needs to learn which leads become revenue. Columns are the lead fields' REST names,
    on the write-back allow-list; the latest handoff of the person speaks for them. -#}
with latest_handoffs as (

    select
        handoffs.*,
        row_number() over (partition by handoffs.person_id order by handoffs.mql_at desc) as nth
    from {{ ref('fct_handoffs') }} as handoffs

),

leads as (

    select identifier as marketing_lead_id, person_id
    from {{ ref('int_identity__identifiers') }}
    where identifier_type = 'marketing_lead_id'

),

survivors as (

    select marketing_lead_id from {{ ref('int_identity__lead_survivors') }}
    where not is_merged_away

),

deals as (

    select deal_id, deal_stage from {{ ref('stg_crm__deals') }}

)

select
    leads.marketing_lead_id,
    case
        when latest_handoffs.outcome in ('won', 'lost', 'opportunity', 'sql') then latest_handoffs.outcome
        else latest_handoffs.decision
    end as "handoffSalesOutcome",
    latest_handoffs.rejection_reason as "handoffRejectionReason",
    deals.deal_stage as "handoffOpportunityStage",
    latest_handoffs.won_amount as "handoffWonRevenue"

from latest_handoffs
inner join leads on leads.person_id = latest_handoffs.person_id
inner join survivors on survivors.marketing_lead_id = leads.marketing_lead_id
left join deals on deals.deal_id = latest_handoffs.deal_id
where latest_handoffs.nth = 1
