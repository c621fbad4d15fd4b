{#- No negative clock: every due time, touch and decision of a handoff comes at or after its MQL,
    and no business-minute figure is below zero. -#}
select *
from {{ ref('fct_handoffs') }}
where first_touch_due_at < mql_at
   or decision_due_at < mql_at
   or first_touch_at < mql_at
   or decided_at < mql_at
   or business_minutes_to_first_touch < 0
   or business_minutes_to_decision < 0
