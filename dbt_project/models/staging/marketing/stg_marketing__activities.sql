{#- One row per lead activity. Attributes the funnel reads are lifted into columns; the rest stay in
    `attributes`. Incremental: a run reads only the batches loaded since the last one. -#}
{{ config(materialized='incremental', unique_key='activity_id', on_schema_change='append_new_columns') }}

with source as (

    select * from {{ source('raw_marketing', 'activities') }}
    {% if is_incremental() %}
    where _dlt_load_id > (select max(_dlt_load_id) from {{ this }})
    {% endif %}

),

activity_types as (

    select id, name from {{ source('raw_marketing', 'activity_types') }}

)

select
    cast(source.id as {{ dbt.type_string() }}) as activity_id,
    cast(source.lead_id as {{ dbt.type_string() }}) as marketing_lead_id,
    {{ utc_timestamp('source.activity_date') }} as occurred_at,
    cast(source.activity_type_id as integer) as activity_type_id,
    activity_types.name as activity_type,
    cast(source.primary_attribute_value_id as {{ dbt.type_string() }}) as primary_attribute_value_id,
    source.primary_attribute_value,
    {{ json_text('source.attributes', 'New Value') }} as new_value,
    {{ json_text('source.attributes', 'Reason') }} as change_reason,
    {{ json_text('source.attributes', 'New Status') }} as new_program_status,
    {{ json_text('source.attributes', 'Merge IDs') }} as merged_lead_ids,
    {{ json_text('source.attributes', 'Webpage URL') }} as webpage_url,
    {{ json_text('source.attributes', 'Link') }} as link_url,
    cast(source.attributes as {{ dbt.type_string() }}) as attributes,
    source._dlt_load_id

from source
left join activity_types on activity_types.id = source.activity_type_id
