{#- One row per value a tracked property took, oldest first per record and property. -#}
with source as (

    select * from {{ source('raw_crm', 'property_history') }}

)

select
    object_type,
    cast(id as {{ dbt.type_string() }}) as object_id,
    property,
    case
        when property in ('lifecyclestage', 'rejection_reason', 'dealstage') then lower(value)
        when property = 'hs_lead_status' then upper(value)
        else value
    end as property_value,
    source_type,
    {{ utc_timestamp('changed_at') }} as changed_at

from source
