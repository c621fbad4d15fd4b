{#- A person's stages follow one another in time: each is left when, and only when, the next is
    entered, never before it was entered; and within a handoff nothing precedes its MQL. -#}
with transitions as (

    select
        transitions.*,
        lag(entered_at) over (partition by person_id order by transition_number) as previous_entered_at,
        lead(entered_at) over (partition by person_id order by transition_number) as next_entered_at
    from {{ ref('fct_stage_transitions') }} as transitions

)

select transitions.*
from transitions
left join {{ ref('fct_handoffs') }} as handoffs on handoffs.handoff_id = transitions.handoff_id
where transitions.entered_at < transitions.previous_entered_at
   or transitions.exited_at < transitions.entered_at
   or transitions.exited_at is distinct from transitions.next_entered_at
   or transitions.entered_at < handoffs.mql_at
