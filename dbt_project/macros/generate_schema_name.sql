{#- Models land in exactly the schema they name (staging, marts, feedback), not dbt's default
    "<target schema>_<custom schema>", so BI tools find `marts.dim_people` on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
