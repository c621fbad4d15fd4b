{#- What the CRM should hold on each contact: the funnel context a rep needs on the record. The
    write-back reads this model and only this; every column but the id is a contact property on
    the write-back allow-list. -#}
with people as (

    select people.crm_contact_id, people.funnel_stage, identity.person_id
    from {{ ref('dim_people') }} as people
    inner join {{ ref('int_identity__identifiers') }} as identity
        on identity.identifier_type = 'crm_contact_id' and identity.identifier = people.crm_contact_id

),

latest_handoffs as (

    select
        crm_contact_id,
        sla_state,
        first_touch_due_at,
        mql_reason,
        row_number() over (partition by crm_contact_id order by mql_at desc) as nth
    from {{ ref('fct_handoffs') }}

),

lead_scores as (

    select identity.person_id, max(leads.lead_score) as lead_score
    from {{ ref('stg_marketing__leads') }} as leads
    inner join {{ ref('int_identity__lead_survivors') }} as survivors
        on survivors.marketing_lead_id = leads.marketing_lead_id and not survivors.is_merged_away
    inner join {{ ref('int_identity__identifiers') }} as identity
        on identity.identifier_type = 'marketing_lead_id' and identity.identifier = leads.marketing_lead_id
    group by 1

)

select
    people.crm_contact_id,
    people.funnel_stage as handoff_funnel_stage,
    latest_handoffs.sla_state as handoff_sla_state,
    case when latest_handoffs.first_touch_due_at is not null
         then {{ iso_timestamp('latest_handoffs.first_touch_due_at') }} end as handoff_sla_due_at,
    latest_handoffs.mql_reason as handoff_mql_reason,
    lead_scores.lead_score as handoff_engagement_score

from people
left join latest_handoffs
    on latest_handoffs.crm_contact_id = people.crm_contact_id and latest_handoffs.nth = 1
left join lead_scores on lead_scores.person_id = people.person_id
