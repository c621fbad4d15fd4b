{#- The moment SLA states are computed for (UTC): the `as_of` var when given (a replay, a test),
    else now. Open clocks are right whenever the models run. -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        {{ utc_timestamp(dbt.current_timestamp()) }}
    {%- endif -%}
{%- endmacro %}
