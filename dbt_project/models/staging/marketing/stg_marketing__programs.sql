with source as (

    select * from {{ source('raw_marketing', 'programs') }}

)

select
    cast(id as {{ dbt.type_string() }}) as program_id,
    name as program_name,
    type as program_type,
    channel,
    status,
    -- Marketo's asset API writes UTC as `2025-05-07T14:00:00Z+0000`.
    cast(replace(substring(created_at, 1, 19), 'T', ' ') as {{ dbt.type_timestamp() }}) as created_at

from source
