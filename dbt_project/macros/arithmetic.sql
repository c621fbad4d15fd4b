{#- A ratio that is null, not an error, when the denominator is zero or null (a cohort with no
    SQLs has no SQL→opportunity rate). Exact numeric division: integer counts would otherwise
    divide as integers on PostgreSQL. -#}
{% macro divide_or_null(numerator, denominator) -%}
    (cast({{ numerator }} as {{ dbt.type_numeric() }}) / nullif({{ denominator }}, 0))
{%- endmacro %}

{#- Days between two timestamps, with fractions (velocity figures are days, not whole days). -#}
{% macro days_between(start_at, end_at) -%}
    ({{ dbt.datediff(start_at, end_at, 'second') }} / 86400.0)
{%- endmacro %}
