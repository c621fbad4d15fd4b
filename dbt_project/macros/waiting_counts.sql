{#- The digest's counts over a group of handoffs still waiting for a first touch (alerts_daily_digest). -#}
{% macro waiting_counts() -%}
    count(*) as waiting_handoffs,
    sum(case when sla_state = 'open' then 1 else 0 end) as open_handoffs,
    sum(case when notice_kind = 'at_risk' then 1 else 0 end) as at_risk_handoffs,
    sum(case when notice_kind = 'breached' then 1 else 0 end) as breached_handoffs,
    sum(case when notice_kind = 'escalated' then 1 else 0 end) as escalated_handoffs,
    min(case when sla_state in ('open', 'at_risk') then first_touch_due_at end) as next_due_at
{%- endmacro %}
