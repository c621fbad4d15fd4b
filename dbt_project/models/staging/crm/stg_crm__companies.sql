with source as (

    select * from {{ source('raw_crm', 'companies') }}

)

select
    cast(id as {{ dbt.type_string() }}) as crm_company_id,
    name as company_name,
    lower(trim(domain)) as domain,
    industry,
    cast(numberofemployees as integer) as employees,
    country,
    {{ utc_timestamp('createdate') }} as created_at,
    archived as is_archived

from source
