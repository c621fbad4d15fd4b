{#- How long a visitor may stay silent before their next event starts a new web session (the
    industry's 30 minutes). Touchpoints reuse it: a visit that follows an e-mail click within it is
    the click's landing, not a touch of its own. -#}
{% macro web_session_timeout_minutes() -%}
    30
{%- endmacro %}
