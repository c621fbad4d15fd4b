{#- A UTC timestamp as ISO 8601 text (`2026-01-09T17:34:55Z`), the form vendor APIs accept. -#}
{% macro iso_timestamp(column) -%}
    {{ dbt.concat([dbt.replace(dbt.cast(column, dbt.type_string()), "' '", "'T'"), "'Z'"]) }}
{%- endmacro %}
