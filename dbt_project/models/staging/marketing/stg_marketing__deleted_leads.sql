with source as (

    {{ source_or_empty('raw_marketing', 'deleted_leads',
                       {'lead_id': 'bigint', 'activity_date': 'timestamp with time zone'}) }}

)

select
    cast(lead_id as {{ dbt.type_string() }}) as marketing_lead_id,
    max({{ utc_timestamp('activity_date') }}) as deleted_at

from source
group by 1
