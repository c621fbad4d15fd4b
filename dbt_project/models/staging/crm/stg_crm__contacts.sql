with source as (

    select * from {{ source('raw_crm', 'contacts') }}

)

select
    cast(id as {{ dbt.type_string() }}) as crm_contact_id,
    lower(trim(email)) as email,
    firstname as first_name,
    lastname as last_name,
    jobtitle as job_title,
    company as company_name,
    country,
    lower(lifecyclestage) as lifecycle_stage,
    upper(hs_lead_status) as lead_status,
    cast(hubspot_owner_id as {{ dbt.type_string() }}) as owner_id,
    lower(rejection_reason) as rejection_reason,
    hs_analytics_source as analytics_source,
    hs_merged_object_ids as merged_contact_ids,
    {{ utc_timestamp('createdate') }} as created_at,
    {{ utc_timestamp('lastmodifieddate') }} as updated_at,
    archived as is_archived,
    {{ utc_timestamp('archived_at') }} as archived_at

from source
