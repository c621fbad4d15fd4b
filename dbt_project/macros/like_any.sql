{#- Whether `column` matches any of the SQL LIKE `patterns`. -#}
{% macro like_any(column, patterns) -%}
    ({% for pattern in patterns %}{{ column }} like '{{ pattern }}'{% if not loop.last %} or {% endif %}{% endfor %})
{%- endmacro %}
