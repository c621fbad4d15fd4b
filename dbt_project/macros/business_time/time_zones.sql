{#- Wall-clock time in an IANA time zone and UTC, both as plain timestamps. Warehouses spell zone
    conversion differently, so each direction dispatches; DuckDB and PostgreSQL share the standard
    `at time zone`, other warehouses add their own implementation. -#}

{#- The wall-clock time in `time_zone` at a UTC moment. -#}
{% macro utc_to_local(utc_timestamp, time_zone) -%}
    {{ return(adapter.dispatch('utc_to_local')(utc_timestamp, time_zone)) }}
{%- endmacro %}

{% macro default__utc_to_local(utc_timestamp, time_zone) -%}
    ((({{ utc_timestamp }}) at time zone 'UTC') at time zone {{ time_zone }})
{%- endmacro %}

{#- The UTC moment of a wall-clock time in `time_zone`, read as Python's zoneinfo reads it (the
    business calendars' ground truth): a wall time that occurs twice, when clocks go back, is its
    first occurrence; one that never occurs, when clocks go forward, takes the offset in force
    before the change. DuckDB and PostgreSQL read a skipped time that way too but take the second
    occurrence of a repeated one, so the offset of the day before is tried first. -#}
{% macro local_to_utc(local_timestamp, time_zone) -%}
    {{ return(adapter.dispatch('local_to_utc')(local_timestamp, time_zone)) }}
{%- endmacro %}

{% macro default__local_to_utc(local_timestamp, time_zone) -%}
    {#- Plain timestamp arithmetic, not dbt.datediff / dbt.dateadd in seconds: PostgreSQL's datediff
        repeats its arguments per date part, and these arguments are zone conversions already. -#}
    {%- set warehouse_reading -%}
        ((({{ local_timestamp }}) at time zone {{ time_zone }}) at time zone 'UTC')
    {%- endset -%}
    {%- set day_before = dbt.dateadd('day', -1, warehouse_reading) -%}
    {%- set reading_with_earlier_offset -%}
        (({{ local_timestamp }}) - ({{ utc_to_local(day_before, time_zone) }} - ({{ day_before }})))
    {%- endset -%}
    case
        when {{ utc_to_local(reading_with_earlier_offset, time_zone) }} = ({{ local_timestamp }})
            then {{ reading_with_earlier_offset }}
        else {{ warehouse_reading }}
    end
{%- endmacro %}
