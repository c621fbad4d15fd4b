with source as (

    select * from {{ source('raw_marketing', 'program_members') }}

)

select
    cast(program_id as {{ dbt.type_string() }}) as program_id,
    cast(lead_id as {{ dbt.type_string() }}) as marketing_lead_id,
    status_name as progression_status,
    reached_success,
    acquired_by as is_acquisition_program,
    {{ utc_timestamp('membership_date') }} as member_since,
    {{ utc_timestamp('updated_at') }} as updated_at

from source
