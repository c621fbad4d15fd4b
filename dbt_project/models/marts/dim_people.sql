with contacts as (

    select * from {{ ref('stg_crm__contacts') }}
    where not is_archived

),

funnel_stages as (

    select * from {{ ref('contract_lifecycle_stages') }}

)

select
    {{ dbt.concat(["'crm-'", 'contacts.crm_contact_id']) }} as person_id,
    contacts.crm_contact_id,
    contacts.email,
    contacts.first_name,
    contacts.last_name,
    contacts.lifecycle_stage,
    coalesce(funnel_stages.funnel_stage, 'unmapped') as funnel_stage,
    contacts.owner_id,
    contacts.created_at

from contacts
left join funnel_stages
    on contacts.lifecycle_stage = funnel_stages.lifecycle_stage
