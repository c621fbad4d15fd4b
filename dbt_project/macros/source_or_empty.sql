{#- A source table, or no rows with the given columns when dlt has not created it yet: dlt creates
    a table with its first row, and a company with no deleted leads yet is no error.
    `columns` maps column name to SQL type. -#}
{% macro source_or_empty(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        select
        {%- for name, type in columns.items() %}
            cast(null as {{ type }}) as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
        where 1 = 0
    {%- else -%}
        select {{ columns.keys() | join(', ') }} from {{ relation }}
    {%- endif -%}
{%- endmacro %}
