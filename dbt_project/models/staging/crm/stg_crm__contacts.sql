with source as (

    select * from {{ source('raw_crm', 'contacts') }}

),

{#- A merged-away contact is no longer listed by the CRM, but the row an earlier load kept stays in
    the raw table; its survivor names it in `hs_merged_object_ids` (up to three merges). #}
merged_away as (

    {% for position in [1, 2, 3] %}
    select {{ dbt.split_part('hs_merged_object_ids', "';'", position) }} as id
    from source
    where hs_merged_object_ids is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select
    cast(id as {{ dbt.type_string() }}) as crm_contact_id,
    {{ well_formed_email('email') }} as email,
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
    {{ utc_timestamp('archived_at') }} as archived_at,
    cast(id as {{ dbt.type_string() }}) in (select id from merged_away where id <> '') as is_merged_away

from source
