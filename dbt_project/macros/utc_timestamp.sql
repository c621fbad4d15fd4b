{#- A loaded `timestamp with time zone` as a plain UTC timestamp, independent of the session's
    time zone (a bare cast would shift it into whatever zone the connection uses). -#}
{% macro utc_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')
{%- endmacro %}
