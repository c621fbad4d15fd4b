{#- Whether `expression` matches the regular expression `pattern` (anchor it to match the whole
    value); each engine spells it its own way. -#}
{% macro matches_pattern(expression, pattern) -%}
    {{ return(adapter.dispatch('matches_pattern')(expression, pattern)) }}
{%- endmacro %}

{% macro default__matches_pattern(expression, pattern) -%}
    regexp_like({{ expression }}, {{ dbt.string_literal(pattern) }})
{%- endmacro %}

{% macro duckdb__matches_pattern(expression, pattern) -%}
    regexp_matches({{ expression }}, {{ dbt.string_literal(pattern) }})
{%- endmacro %}

{% macro postgres__matches_pattern(expression, pattern) -%}
    ({{ expression }} ~ {{ dbt.string_literal(pattern) }})
{%- endmacro %}

{#- The e-mail address in `column`, trimmed and lower-cased, or null when it is not well formed: a
    malformed address must join no identities (quality.record_flags keeps it flagged). -#}
{% macro well_formed_email(column) -%}
    case when {{ matches_pattern('trim(' ~ column ~ ')', var('well_formed_email')) }} then lower(trim({{ column }})) end
{%- endmacro %}
