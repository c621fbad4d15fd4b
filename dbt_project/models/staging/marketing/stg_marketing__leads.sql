with source as (

    select * from {{ source('raw_marketing', 'leads') }}

)

select
    cast(id as {{ dbt.type_string() }}) as marketing_lead_id,
    {{ well_formed_email('email') }} as email,
    first_name,
    last_name,
    title,
    company as company_name,
    cast(lead_score as integer) as lead_score,
    lead_status,
    lead_source,
    {{ utc_timestamp('created_at') }} as created_at,
    {{ utc_timestamp('updated_at') }} as updated_at

from source
