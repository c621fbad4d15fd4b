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

first_events as (

    select anonymous_id, session_number, message_id as first_message_id
    from (
        select
            anonymous_id,
            session_number,
            message_id,
            row_number() over (partition by anonymous_id, session_number order by event_number) as nth
        from numbered
    ) as ranked
    where nth = 1

),

first_page_views as (

    select *
    from (
        select
            *,
            row_number() over (partition by anonymous_id, session_number order by event_number) as nth
        from numbered
        where call_type = 'page'
    ) as ranked
    where nth = 1

),

sessions as (

    select
        anonymous_id,
        session_number,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        sum(case when call_type = 'page' then 1 else 0 end) as page_views,
        sum(case when call_type = 'track' then 1 else 0 end) as tracked_events,
        max(_dlt_load_id) as _dlt_load_id
    from numbered
    group by 1, 2

)

select
    {{ dbt.hash('first_events.first_message_id') }} as session_id,
    sessions.anonymous_id,
    people.person_id,
    sessions.session_number,
    sessions.started_at,
    sessions.ended_at,
    sessions.page_views,
    sessions.tracked_events,
    first_page_views.page_path as landing_page_path,
    first_page_views.page_url as landing_page_url,
    first_page_views.referrer,
    first_page_views.utm_source,
    first_page_views.utm_medium,
    first_page_views.utm_campaign,
    first_page_views.utm_content,
    first_page_views.utm_term,
    sessions._dlt_load_id

from sessions
inner join first_events
    on first_events.anonymous_id = sessions.anonymous_id
   and first_events.session_number = sessions.session_number
left join first_page_views
    on first_page_views.anonymous_id = sessions.anonymous_id
   and first_page_views.session_number = sessions.session_number
left join people on people.anonymous_id = sessions.anonymous_id
