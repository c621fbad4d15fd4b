{#- One row per website event. Incremental on the load id, so a run reads only new batches; late
    events arrive in a later batch and are taken then (sessions are rebuilt downstream). -#}
{{ config(materialized='incremental', unique_key='message_id', on_schema_change='append_new_columns') }}

with source as (

    select * from {{ source('raw_web', 'events') }}
    {% if is_incremental() %}
    where _dlt_load_id > (select max(_dlt_load_id) from {{ this }})
    {% endif %}

)

select
    message_id,
    type as call_type,
    event as event_name,
    anonymous_id,
    cast(user_id as {{ dbt.type_string() }}) as marketing_lead_id,
    lower(trim(email)) as email,
    {{ utc_timestamp('timestamp') }} as occurred_at,
    page_url,
    page_path,
    page_title,
    nullif(referrer, '') as referrer,
    utm_source,
    utm_medium,
    utm_campaign,
    utm_content,
    utm_term,
    _dlt_load_id

from source
