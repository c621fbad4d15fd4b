{#- Links between CRM records in both directions' terms: `from_*` is the record the link was read
    from (e.g. an engagement), `to_*` the record it points at (e.g. its contact). -#}
with source as (

    select * from {{ source('raw_crm', 'associations') }}

)

select distinct
    from_type as from_object_type,
    cast(from_id as {{ dbt.type_string() }}) as from_object_id,
    to_type as to_object_type,
    cast(to_id as {{ dbt.type_string() }}) as to_object_id

from source
