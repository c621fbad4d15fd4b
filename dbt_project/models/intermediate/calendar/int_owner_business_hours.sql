{#- Each owner's SLA calendar as UTC intervals: working hours on every working local day, in the
    owner's time zone (so daylight-saving changes move the UTC interval), minus the contract's
    weekend days and the public holidays of the owner's country (unless the contract keeps them
    working: `business_calendar.public_holidays: false`). The running total of business
    minutes before each interval turns business time between two moments into a difference of two
    look-ups (see macros/business_time). Local dates run from January 1 two years before the
    as-of year (the public holidays loaded reach that far) to `business_calendar_lookahead_days`
    (default 60) after the as-of date, so a due time can fall after the run. -#}
{#- PostgreSQL runs the macros' look-ups row by row: they find an owner's interval by start or by
    running total, hence the indexes. Its JIT compiler would spend seconds on the zone conversions
    below (seeds without statistics make the query look huge), while the query itself takes well
    under a second. DuckDB decorrelates the look-ups into joins and needs no index (dropping one
    before the rebuild's rename races with models built beside it). -#}
{%- if target.type == 'postgres' %}
{{ config(
    indexes=[{'columns': ['owner_id', 'interval_start']}, {'columns': ['owner_id', 'cumulative_minutes_before']}],
    pre_hook="set local jit = off",
) }}
{%- endif %}

{%- set first_local_date -%}
    {%- if var('business_calendar_start', none) -%}
        cast('{{ var("business_calendar_start") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        {{ dbt.dateadd('year', -2, dbt.date_trunc('year', as_of_timestamp())) }}
    {%- endif -%}
{%- endset -%}
{%- set end_local_date -%}
    {{ dbt.dateadd('day', var('business_calendar_lookahead_days', 60) + 1, dbt.date_trunc('day', as_of_timestamp())) }}
{%- endset %}

with settings as (

    select * from {{ ref('contract_settings') }}

),

owner_calendars as (

    -- Every CRM owner; one the calendars file does not list works the contract's default calendar.
    select
        owners.owner_id,
        coalesce(calendars.time_zone, settings.default_time_zone) as time_zone,
        coalesce(calendars.country, settings.default_country) as country,
        coalesce(calendars.start_hour, settings.default_start_hour) as start_hour,
        coalesce(calendars.end_hour, settings.default_end_hour) as end_hour,
        settings.observe_public_holidays

    from {{ ref('stg_crm__owners') }} as owners
    cross join settings
    left join {{ ref('stg_reference__owner_calendars') }} as calendars
        on calendars.owner_id = owners.owner_id

),

local_days as (

    {{ dbt.date_spine('day', first_local_date, end_local_date) }}

),

working_days as (

    select
        owner_calendars.owner_id,
        owner_calendars.time_zone,
        owner_calendars.country,
        cast(local_days.date_day as date) as local_date,
        {{ dbt.dateadd('hour', 'owner_calendars.start_hour', 'cast(local_days.date_day as date)') }} as local_start,
        {{ dbt.dateadd('hour', 'owner_calendars.end_hour', 'cast(local_days.date_day as date)') }} as local_end

    from owner_calendars
    cross join local_days
    left join {{ ref('stg_reference__public_holidays') }} as holidays
        on holidays.country = owner_calendars.country
        and holidays.holiday_date = cast(local_days.date_day as date)
        and owner_calendars.observe_public_holidays
    where holidays.holiday_date is null
        and extract(isodow from local_days.date_day) not in (
            select iso_weekday from {{ ref('contract_weekend_days') }}
        )

),

intervals as (

    select
        owner_id,
        local_date,
        time_zone,
        country,
        {{ local_to_utc('local_start', 'time_zone') }} as interval_start,
        {{ local_to_utc('local_end', 'time_zone') }} as interval_end

    from working_days

),

measured as (

    select
        *,
        cast({{ dbt.datediff('interval_start', 'interval_end', 'second') }} as double precision) / 60 as business_minutes

    from intervals
    -- Hours inside a skipped hour (02:00–03:00 on the day clocks go forward) leave nothing to work.
    where interval_end > interval_start

)

select
    owner_id,
    local_date,
    time_zone,
    country,
    interval_start,
    interval_end,
    business_minutes,
    sum(business_minutes) over (
        partition by owner_id
        order by interval_start
        rows between unbounded preceding and current row
    ) - business_minutes as cumulative_minutes_before

from measured
