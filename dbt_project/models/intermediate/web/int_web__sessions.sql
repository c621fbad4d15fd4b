{#- Web sessions: one row per anonymous id and visit. A gap of 30 minutes or more between two
    events of an anonymous id starts a new session; the session's landing page, referrer and UTM
    parameters are those of its first page view.

    Incremental by anonymous id: a run rebuilds every session of the anonymous ids that received
    events since the last run (a late event can join, split or start any of their sessions), and of
    those whose person changed (an identify, a lead merge), so people identified later get their
    earlier sessions. Other anonymous ids' sessions are left as they are. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='anonymous_id',
    on_schema_change='fail',
) }}

with people as (

    select identifier as anonymous_id, person_id
    from {{ ref('int_identity__identifiers') }}
    where identifier_type = 'anonymous_id'

),

{% if is_incremental() %}
rebuilt_anonymous_ids as (

    select anonymous_id
    from {{ ref('stg_web__events') }}
    where _dlt_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})

    union

    select sessions.anonymous_id
    from {{ this }} as sessions
    inner join people on people.anonymous_id = sessions.anonymous_id
    where people.person_id <> sessions.person_id

),
{% endif %}

events as (

    select *
    from {{ ref('stg_web__events') }}
    where anonymous_id is not null
    {% if is_incremental() %}
      and anonymous_id in (select anonymous_id from rebuilt_anonymous_ids)
    {% endif %}

),

gaps as (

    select
        *,
        lag(occurred_at) over (partition by anonymous_id order by occurred_at, message_id) as previous_event_at
    from events

),

numbered as (

    select
        *,
        sum(
            case
                when previous_event_at is null
                  or occurred_at >= {{ dbt.dateadd('minute', web_session_timeout_minutes(), 'previous_event_at') }}
                then 1 else 0
            end
        ) over (
            partition by anonymous_id order by occurred_at, message_id rows between unbounded preceding and current row
        ) as session_number,
        row_number() over (partition by anonymous_id order by occurred_at, message_id) as event_number
    from gaps

),

session_events as (

    select
        anonymous_id,
        session_number,
        call_type,
        occurred_at,
        _dlt_load_id,
        first_value(message_id) over in_order as first_message_id,
        -- The first page view's values: page views sort first, so a session without one gets nulls.
        {%- for column, landing_column in [
            ('page_path', 'landing_page_path'), ('page_url', 'landing_page_url'), ('referrer', 'referrer'),
            ('utm_source', 'utm_source'), ('utm_medium', 'utm_medium'), ('utm_campaign', 'utm_campaign'),
            ('utm_content', 'utm_content'), ('utm_term', 'utm_term')] %}
        first_value(case when call_type = 'page' then {{ column }} end) over page_views_first as {{ landing_column }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from numbered
    window
        in_order as (partition by anonymous_id, session_number order by event_number),
        page_views_first as (
            partition by anonymous_id, session_number
            order by case when call_type = 'page' then 0 else 1 end, event_number
        )

),

sessions as (

    select
        anonymous_id,
        session_number,
        first_message_id,
        landing_page_path,
        landing_page_url,
        referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        sum(case when call_type = 'page' then 1 else 0 end) as page_views,
        sum(case when call_type = 'track' then 1 else 0 end) as tracked_events,
        max(_dlt_load_id) as _dlt_load_id
    from session_events
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

)

select
    {{ dbt.hash('sessions.first_message_id') }} as session_id,
    sessions.anonymous_id,
    people.person_id,
    sessions.session_number,
    sessions.started_at,
    sessions.ended_at,
    sessions.page_views,
    sessions.tracked_events,
    sessions.landing_page_path,
    sessions.landing_page_url,
    sessions.referrer,
    sessions.utm_source,
    sessions.utm_medium,
    sessions.utm_campaign,
    sessions.utm_content,
    sessions.utm_term,
    sessions._dlt_load_id

from sessions
left join people on people.anonymous_id = sessions.anonymous_id
