{#- One row per website event. Incremental on the load id, so a run reads only new batches; late
    events arrive in a later batch and are taken then (sessions are rebuilt downstream). -#}
{{ config(materialized='incremental', unique_key='message_id', on_schema_change='append_new_columns') }}

{#- The table appears with the first event loaded; until then this model is empty, not an error.
    Its stand-in timestamp carries a time zone, as dlt loads it, so the typed columns are the same. -#}
{%- set string = dbt.type_string() -%}
with source as (

    select * from (
        {{ source_or_empty('raw_web', 'events', {
            'message_id': string, 'type': string, 'event': string, 'anonymous_id': string,
            'user_id': string, 'email': string, 'timestamp': 'timestamp with time zone', 'page_url': string,
            'page_path': string, 'page_title': string, 'referrer': string, 'utm_source': string,
            'utm_medium': string, 'utm_campaign': string, 'utm_content': string, 'utm_term': string,
            '_dlt_load_id': string}) }}
    ) as events
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
