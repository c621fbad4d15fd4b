{#- What the CRM should hold on each contact. The write-back reads this model and only this. -#}
select
    crm_contact_id,
    funnel_stage as handoff_funnel_stage

from {{ ref('dim_people') }}
where crm_contact_id is not null
