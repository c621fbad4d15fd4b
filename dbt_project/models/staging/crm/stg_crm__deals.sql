with source as (

    select * from {{ source('raw_crm', 'deals') }}

)

select
    cast(id as {{ dbt.type_string() }}) as deal_id,
    dealname as deal_name,
    {#- A negative amount is flagged (quality.record_flags) and counts as no revenue. #}
    case when amount >= 0 then cast(amount as {{ dbt.type_numeric() }}) end as amount,
    lower(dealstage) as deal_stage,
    pipeline as pipeline_id,
    dealtype as deal_type,
    closed_lost_reason,
    cast(hubspot_owner_id as {{ dbt.type_string() }}) as owner_id,
    {{ utc_timestamp('createdate') }} as created_at,
    {{ utc_timestamp('closedate') }} as closed_at,
    archived as is_archived

from source
