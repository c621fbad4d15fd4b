{#- Business time of an owner: SQL expressions for any model, read off int_owner_business_hours with
    correlated subqueries. They count as the sandbox's BusinessCalendar does (its `between` and
    `advance`); internally in whole microseconds, so a moment that ends an interval exactly is never
    blurred by floating point. Each look-up takes the first interval in the order of an indexed
    column (PostgreSQL walks its index instead of the owner's whole calendar). Inside, the calendar's
    columns and aliases carry names of their own, so an argument may be a bare column name of the
    calling model (`owner_id`) without being captured by a subquery. -#}

{#- Business minutes of the owner's calendar in [start_at, end_at), fractional; 0 when end_at is not
    after start_at; null when either moment is null or the owner has no calendar. -#}
{% macro business_minutes_between(owner_id, start_at, end_at) -%}
    case
        when {{ end_at }} <= {{ start_at }} then 0
        when {{ end_at }} > {{ start_at }} then
            ({{ business_microseconds_before(owner_id, end_at) }}
             - {{ business_microseconds_before(owner_id, start_at) }}) / 60000000.0
    end
{%- endmacro %}

{#- The UTC moment `minutes` (>= 0, may be fractional) business minutes after start_at. Time is
    spent interval by interval; when what is left equals the rest of an interval, the result is the
    next interval's start, not this one's end (a due time always lies inside working time). Null
    past the calendar's end, for a null argument, or for an owner without a calendar. -#}
{% macro business_time_after(owner_id, start_at, minutes) -%}
    (
        {#- The target lies in the interval with the largest running total not past it, unless that
            interval ends at or before it. Intervals are walked by their running total in minutes
            (indexed on PostgreSQL; a minute of slack absorbs its rounding); the test that decides
            is in microseconds. -#}
        select
            case
                when owner_calendar.calendar_microseconds_before + owner_calendar.calendar_microseconds
                    > business_target.target_microseconds_before
                    then {{ plus_microseconds('owner_calendar.calendar_interval_start',
                                              'business_target.target_microseconds_before'
                                              ~ ' - owner_calendar.calendar_microseconds_before') }}
            end
        from (
            select {{ business_microseconds_before(owner_id, start_at) }}
                + {{ minutes_to_microseconds(minutes) }} as target_microseconds_before
        ) as business_target
        inner join {{ owner_business_hours() }} as owner_calendar
            on owner_calendar.calendar_owner_id = {{ owner_id }}
            and owner_calendar.calendar_minutes_before <= business_target.target_microseconds_before / 60000000.0 + 1
            and owner_calendar.calendar_microseconds_before <= business_target.target_microseconds_before
        order by owner_calendar.calendar_minutes_before desc
        limit 1
    )
{%- endmacro %}

{#- Business microseconds of the owner's calendar before the moment `at`: the running total up to
    the last interval starting at or before it, plus the part of that interval already passed; 0
    before the calendar's first interval. -#}
{% macro business_microseconds_before(owner_id, at) -%}
    cast(coalesce(
        (
            select owner_calendar.calendar_microseconds_before
                + least({{ dbt.datediff('owner_calendar.calendar_interval_start', at, 'microsecond') }},
                        owner_calendar.calendar_microseconds)
            from {{ owner_business_hours() }} as owner_calendar
            where owner_calendar.calendar_owner_id = {{ owner_id }}
                and owner_calendar.calendar_interval_start <= {{ at }}
            order by owner_calendar.calendar_interval_start desc
            limit 1
        ),
        case
            when {{ at }} is not null and exists (
                select 1 from {{ owner_business_hours() }} as owner_calendar
                where owner_calendar.calendar_owner_id = {{ owner_id }}
            ) then 0
        end
    ) as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- int_owner_business_hours under names a calling model's columns are unlikely to share, with its
    minutes also as whole microseconds. -#}
{% macro owner_business_hours() -%}
    (
        select
            owner_id as calendar_owner_id,
            interval_start as calendar_interval_start,
            cumulative_minutes_before as calendar_minutes_before,
            {{ minutes_to_microseconds('cumulative_minutes_before') }} as calendar_microseconds_before,
            {{ minutes_to_microseconds('business_minutes') }} as calendar_microseconds
        from {{ ref('int_owner_business_hours') }}
    )
{%- endmacro %}

{% macro minutes_to_microseconds(minutes) -%}
    cast(round(({{ minutes }}) * 60000000.0) as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- Whole seconds first, then the rest: DuckDB multiplies an interval by 32-bit integers only. -#}
{% macro plus_microseconds(timestamp, microseconds) -%}
    {%- set whole_seconds = 'floor((' ~ microseconds ~ ') / 1000000.0)' -%}
    {{ dbt.dateadd('microsecond', '(' ~ microseconds ~ ') - 1000000 * ' ~ whole_seconds,
                   dbt.dateadd('second', whole_seconds, timestamp)) }}
{%- endmacro %}
