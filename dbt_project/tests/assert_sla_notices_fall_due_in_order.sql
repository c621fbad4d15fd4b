{#- A waiting handoff's notices fall due in the order of their severity: at risk no later than the
    due time (the at-risk fraction is at most the whole allowance), escalation no earlier. -#}
select *
from {{ ref('int_alerts__waiting_handoffs') }}
where at_risk_at < mql_at
   or at_risk_at > due_at
   or escalated_at < due_at
