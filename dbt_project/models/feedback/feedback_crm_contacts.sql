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

touches as (

    select
        person_id,
        campaign,
        content,
        is_content_download,
        row_number() over (partition by person_id order by touched_at, touchpoint_id) as nth_first,
        row_number() over (partition by person_id order by touched_at desc, touchpoint_id desc) as nth_last
    from {{ ref('int_touchpoints') }}

),

first_and_last_campaigns as (

    select
        person_id,
        max(case when nth_first = 1 then campaign end) as first_touch_campaign,
        max(case when nth_last = 1 then campaign end) as last_touch_campaign
    from touches
    group by 1

),

{#- The asset the person downloaded most recently (a rep's opener): a download's program is the
    asset, its content the form. -#}
recent_content as (

    select
        person_id,
        coalesce(campaign, content) as content,
        row_number() over (partition by person_id order by nth_last) as nth
    from touches
    where is_content_download

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
    lead_scores.lead_score as handoff_engagement_score,
    first_and_last_campaigns.first_touch_campaign as handoff_first_touch_campaign,
    first_and_last_campaigns.last_touch_campaign as handoff_last_touch_campaign,
    recent_content.content as handoff_recent_content

from people
left join latest_handoffs
    on latest_handoffs.crm_contact_id = people.crm_contact_id and latest_handoffs.nth = 1
left join lead_scores on lead_scores.person_id = people.person_id
left join first_and_last_campaigns on first_and_last_campaigns.person_id = people.person_id
left join recent_content on recent_content.person_id = people.person_id and recent_content.nth = 1
