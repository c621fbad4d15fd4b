{#- A name as a URL slug: lower case, each run of other characters than a-z and 0-9 turned into
    one hyphen, no hyphen at either end ("Paid Search – Brand" → "paid-search-brand"), the form
    marketers give UTM campaign names of programs. -#}
{% macro slugify(column) -%}
    regexp_replace(regexp_replace(lower({{ column }}), '[^a-z0-9]+', '-', 'g'), '^-+|-+$', '', 'g')
{%- endmacro %}
