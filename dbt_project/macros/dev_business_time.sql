{% macro business_minutes_between(owner_id, start_at, end_at) -%}
    (case when {{ end_at }} > {{ start_at }} then {{ dbt.datediff(start_at, end_at, 'second') }} / 60.0 else 0 end)
{%- endmacro %}
{% macro business_time_after(owner_id, start_at, minutes) -%}
    {{ dbt.dateadd('minute', minutes, start_at) }}
{%- endmacro %}
