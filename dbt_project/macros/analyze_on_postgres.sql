{#- PostgreSQL plans each model from its inputs' statistics, and autovacuum gathers those for a new
    table only some time after it is built: the models built next in the same run would be planned
    as if their inputs were empty. So each table is analyzed as soon as it is built. DuckDB keeps
    its statistics as it writes. -#}
{% macro analyze_on_postgres() -%}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
