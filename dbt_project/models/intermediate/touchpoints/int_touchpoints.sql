{#- Marketing touches: one row per interaction of a person with marketing, each counted once.

    - web_visit: a web session that arrived from a campaign (UTM parameters) or from another site
      (an external referrer). A visit that follows an e-mail click of the same program within the
      session timeout is that click's landing, not a touch of its own.
    - form_fill: a Fill Out Form activity. Its program is the one the fill enrolled the person in
      or advanced them through (downloaded, registered, requested, subscribed): rather another
      than the campaign that brought the visit (the web_visit carries that), never a nurture
      stream the new lead joined by automation. A repeated fill that changed no program has none.
    - email_click: a Click Email activity; its program is the one whose e-mail it is (Marketo
      names e-mail assets "<program>.<e-mail>").
    - program_success: a program status change that reaches the program's success (a booth
      visit, a syndicated download, a webinar attended) and that no form fill or e-mail click of
      the lead at the same instant already stands for.

    The campaign is the touch's program, else the visit's UTM campaign (mapped to the program of
    the same name or slug where there is one). The channel is the program's channel, else the web
    source of the visit (UTM medium, else the referrer's kind). -#}

{%- set paid_search_media = ['cpc', 'ppc', 'paid_search', 'paidsearch', 'sem'] -%}
{%- set paid_social_media = ['paid_social', 'paidsocial', 'social_paid', 'paid-social'] -%}
{%- set email_media = ['email', 'e-mail', 'newsletter'] -%}
{%- set display_media = ['display', 'banner', 'cpm'] -%}
{%- set search_engine_hosts = ['%google.%', '%bing.%', '%duckduckgo.%', '%yahoo.%', '%baidu.%', '%yandex.%', '%ecosia.%'] -%}
{%- set social_network_hosts = ['%linkedin.%', 'lnkd.in', '%facebook.%', '%twitter.%', 't.co', 'x.com', '%instagram.%', '%reddit.%', '%youtube.%'] -%}
{#- Programs on these channels hand out content: their success is a content download. -#}
{%- set content_channels = ['Content', 'Content Syndication'] -%}

with lead_people as (

    select identifier as marketing_lead_id, person_id
    from {{ ref('int_identity__identifiers') }}
    where identifier_type = 'marketing_lead_id'

),

programs as (

    select
        program_id,
        program_name,
        program_type,
        channel,
        {{ slugify('program_name') }} as program_slug
    from {{ ref('stg_marketing__programs') }}

),

activities as (

    select
        activities.*,
        lead_people.person_id,
        -- The form fill or e-mail click an activity came with: marketing automation logs the
        -- program status changes a fill or click causes at its very instant.
        max(case when activities.activity_type in ('Fill Out Form', 'Click Email') then activities.activity_id end)
            over (partition by activities.marketing_lead_id, activities.occurred_at) as interaction_id
    from {{ ref('stg_marketing__activities') }} as activities
    inner join lead_people on lead_people.marketing_lead_id = activities.marketing_lead_id
    where activities.activity_type in ('Fill Out Form', 'Click Email', 'Change Status in Progression', 'New Lead')

),

visits as (

    select
        sessions.*,
        {{ dbt.split_part('sessions.landing_page_url', "'/'", 3) }} as landing_host,
        {{ dbt.split_part('sessions.referrer', "'/'", 3) }} as referrer_host
    from {{ ref('int_web__sessions') }} as sessions

),

visit_sources as (

    select
        visits.session_id,
        visits.person_id,
        visits.started_at,
        visits.ended_at,
        visits.landing_page_path,
        visits.utm_campaign,
        programs.program_id,
        visits.utm_source is not null or visits.utm_medium is not null or visits.utm_campaign is not null
            as has_campaign,
        -- A referrer on the visit's own site is a visit resumed after the timeout, not a source.
        visits.referrer_host <> '' and visits.referrer_host <> visits.landing_host as has_external_referrer,
        case
            when lower(visits.utm_medium) in ('{{ paid_search_media | join("', '") }}') then 'Paid Search'
            when lower(visits.utm_medium) in ('{{ paid_social_media | join("', '") }}') then 'Paid Social'
            when lower(visits.utm_medium) in ('{{ email_media | join("', '") }}') then 'Email'
            when lower(visits.utm_medium) in ('{{ display_media | join("', '") }}') then 'Display'
            when lower(visits.utm_medium) = 'referral' then 'Referral'
            when visits.utm_medium is not null then 'Other Campaigns'
            when visits.referrer_host = '' or visits.referrer_host = visits.landing_host
                or visits.referrer_host is null then 'Direct'
            when {{ like_any('visits.referrer_host', search_engine_hosts) }} then 'Organic Search'
            when {{ like_any('visits.referrer_host', social_network_hosts) }} then 'Organic Social'
            else 'Referral'
        end as web_channel
    from visits
    left join programs
        on programs.program_slug = {{ slugify('visits.utm_campaign') }}

),

email_click_programs as (

    -- The longest program name the e-mail's name starts with, so "A.B" beats "A" for "A.B.Email".
    select distinct
        activities.activity_id,
        first_value(programs.program_id) over (
            partition by activities.activity_id order by length(programs.program_name) desc, programs.program_id
        ) as program_id
    from activities
    inner join programs
        on substring(activities.primary_attribute_value, 1, length(programs.program_name) + 1)
           = {{ dbt.concat(['programs.program_name', "'.'"]) }}
    where activities.activity_type = 'Click Email'

),

email_clicks as (

    select activities.*, email_click_programs.program_id
    from activities
    left join email_click_programs on email_click_programs.activity_id = activities.activity_id
    where activities.activity_type = 'Click Email'

),

email_click_landings as (

    select distinct visit_sources.session_id
    from visit_sources
    inner join email_clicks
        on email_clicks.person_id = visit_sources.person_id
       and email_clicks.program_id = visit_sources.program_id
       and email_clicks.occurred_at <= visit_sources.started_at
       and visit_sources.started_at
           < {{ dbt.dateadd('minute', web_session_timeout_minutes(), 'email_clicks.occurred_at') }}

),

status_changes as (

    select
        activities.*,
        cast(activities.primary_attribute_value_id as {{ dbt.type_string() }}) as program_id,
        lower({{ json_text('activities.attributes', 'Success') }}) = 'true' as reaches_success
    from activities
    where activities.activity_type = 'Change Status in Progression'

),

form_fills as (

    select * from activities where activity_type = 'Fill Out Form'

),

form_fill_visits as (

    -- The visit the form was filled in: the person's latest session begun by then and not yet
    -- timed out (web events carry milliseconds, marketing activities whole seconds).
    select distinct
        form_fills.activity_id,
        first_value(visit_sources.program_id) over latest_first as arrival_program_id,
        first_value(visit_sources.web_channel) over latest_first as web_channel
    from form_fills
    inner join visit_sources
        on visit_sources.person_id = form_fills.person_id
       and visit_sources.started_at <= form_fills.occurred_at
       and form_fills.occurred_at
           < {{ dbt.dateadd('minute', web_session_timeout_minutes(), 'visit_sources.ended_at') }}
    window latest_first as (
        partition by form_fills.activity_id order by visit_sources.started_at desc, visit_sources.session_id asc
    )

),

form_fill_programs as (

    -- The programs whose status the fill changed, nurture streams aside (engagement programs
    -- enrol every new lead by automation). The campaign that brought the visit records the fill
    -- as its response too; another program is the fill's offer, so it comes first.
    select distinct
        status_changes.interaction_id as activity_id,
        first_value(status_changes.program_id) over (
            partition by status_changes.interaction_id
            order by
                case when status_changes.program_id = form_fill_visits.arrival_program_id then 1 else 0 end,
                case when status_changes.reaches_success then 0 else 1 end,
                status_changes.program_id
        ) as program_id
    from status_changes
    inner join programs on programs.program_id = status_changes.program_id
    left join form_fill_visits on form_fill_visits.activity_id = status_changes.interaction_id
    where status_changes.interaction_id in (select activity_id from form_fills)
      and programs.program_type <> 'Engagement'

),

touches as (

    select
        {{ dbt.concat(["'web_visit:'", 'visit_sources.session_id']) }} as touchpoint_id,
        visit_sources.person_id,
        visit_sources.started_at as touched_at,
        'web_visit' as touchpoint_type,
        visit_sources.program_id,
        visit_sources.utm_campaign,
        visit_sources.web_channel,
        visit_sources.landing_page_path as content
    from visit_sources
    where (visit_sources.has_campaign or visit_sources.has_external_referrer)
      and visit_sources.session_id not in (select session_id from email_click_landings)

    union all

    select
        {{ dbt.concat(["'form_fill:'", 'form_fills.activity_id']) }},
        form_fills.person_id,
        form_fills.occurred_at,
        'form_fill',
        form_fill_programs.program_id,
        null,
        coalesce(form_fill_visits.web_channel, 'Unknown'),
        form_fills.primary_attribute_value
    from form_fills
    left join form_fill_programs on form_fill_programs.activity_id = form_fills.activity_id
    left join form_fill_visits on form_fill_visits.activity_id = form_fills.activity_id

    union all

    select
        {{ dbt.concat(["'email_click:'", 'email_clicks.activity_id']) }},
        email_clicks.person_id,
        email_clicks.occurred_at,
        'email_click',
        email_clicks.program_id,
        null,
        'Email',
        email_clicks.primary_attribute_value
    from email_clicks

    union all

    select
        {{ dbt.concat(["'program_success:'", 'status_changes.activity_id']) }},
        status_changes.person_id,
        status_changes.occurred_at,
        'program_success',
        status_changes.program_id,
        null,
        null,
        status_changes.new_program_status
    from status_changes
    where status_changes.reaches_success
      and status_changes.interaction_id is null

),

people_known as (

    -- When each person became known: their earliest lead's creation.
    select lead_people.person_id, min(lead_creations.created_at) as known_at
    from (
        select marketing_lead_id, created_at from {{ ref('stg_marketing__leads') }}
        union all
        select marketing_lead_id, occurred_at from activities where activity_type = 'New Lead'
    ) as lead_creations
    inner join lead_people on lead_people.marketing_lead_id = lead_creations.marketing_lead_id
    group by 1

),

lead_creation_touches as (

    -- The touch that made the person known: their last touch at or before that moment.
    select distinct
        first_value(touches.touchpoint_id) over (
            partition by touches.person_id order by touches.touched_at desc, touches.touchpoint_id desc
        ) as touchpoint_id
    from touches
    inner join people_known
        on people_known.person_id = touches.person_id and people_known.known_at >= touches.touched_at

)

select
    touches.touchpoint_id,
    touches.person_id,
    touches.touched_at,
    touches.touchpoint_type,
    coalesce(programs.channel, touches.web_channel) as channel,
    coalesce(programs.program_name, touches.utm_campaign) as campaign,
    touches.program_id,
    touches.content,
    touches.touchpoint_id in (select touchpoint_id from lead_creation_touches) as is_lead_creation_touch,
    touches.touchpoint_type in ('form_fill', 'program_success')
        and coalesce(programs.channel in ('{{ content_channels | join("', '") }}'), false) as is_content_download

from touches
left join programs on programs.program_id = touches.program_id
