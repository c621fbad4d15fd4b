{#- A UTC timestamp as wall-clock time in a time zone given by name (a column or a literal), so
    periods are cut where the business says a month or quarter begins. -#}
{% macro local_timestamp(utc_column, time_zone) -%}
    (({{ utc_column }} at time zone 'UTC') at time zone {{ time_zone }})
{%- endmacro %}
