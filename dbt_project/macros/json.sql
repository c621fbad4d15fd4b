{#- JSON helpers dbt has no cross-database macro for; one implementation per warehouse. -#}

{#- The `name` of the element flagged `primary` in a JSON array of teams (HubSpot owners). -#}
{% macro primary_team_name(column) -%}
    {{ return(adapter.dispatch('primary_team_name')(column)) }}
{%- endmacro %}

{% macro duckdb__primary_team_name(column) -%}
    list_filter(
        from_json({{ column }}, '[{"name": "VARCHAR", "primary": "BOOLEAN"}]'),
        lambda team: coalesce(team.primary, false)
    )[1].name
{%- endmacro %}

{% macro postgres__primary_team_name(column) -%}
    (select team ->> 'name' from jsonb_array_elements({{ column }}::jsonb) as team
     where coalesce((team ->> 'primary')::boolean, false) limit 1)
{%- endmacro %}

{#- The value under `key` of a JSON object, as text (Marketo activity attributes are loaded as
    one object of attribute name to value). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text')(column, key)) }}
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
    ({{ column }} ->> '$."{{ key }}"')
{%- endmacro %}

{% macro postgres__json_text(column, key) -%}
    ({{ column }}::jsonb ->> '{{ key }}')
{%- endmacro %}
