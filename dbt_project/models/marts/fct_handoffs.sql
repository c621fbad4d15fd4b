{#- One row per handoff (person × MQL event): its owner and policy, the business-time clocks for the
    first touch and the decision, the SLA state as of the run (or the `as_of` var), and what became
    of it downstream. -#}
with handoffs as (

    select * from {{ ref('int_handoffs__mql_events') }}

),

settings as (

    select * from {{ ref('contract_settings') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

first_touches as (

    select
        handoffs.handoff_id,
        touches.occurred_at as first_touch_at,
        touches.engagement_type as first_touch_type,
        touches.engagement_id as first_touch_id,
        row_number() over (
            partition by handoffs.handoff_id order by touches.occurred_at, touches.engagement_id
        ) as nth
    from handoffs
    inner join {{ ref('int_handoffs__sales_touches') }} as touches
        on touches.crm_contact_id = handoffs.crm_contact_id
       and touches.occurred_at >= handoffs.mql_at
       and (handoffs.next_mql_at is null or touches.occurred_at < handoffs.next_mql_at)

),

{#- Property changes of the handoff's contact while the handoff lasted. -#}
changes as (

    select handoffs.handoff_id, history.property, history.property_value, history.changed_at
    from handoffs
    inner join {{ ref('stg_crm__property_history') }} as history
        on history.object_type = 'contacts'
       and history.object_id = handoffs.crm_contact_id
       and history.changed_at >= handoffs.mql_at
       and (handoffs.next_mql_at is null or history.changed_at < handoffs.next_mql_at)

),

status_decisions as (

    select
        changes.handoff_id,
        min(case when statuses.decision = 'accepted' then changes.changed_at end) as accepted_status_at,
        min(case when statuses.decision = 'rejected' then changes.changed_at end) as rejected_at
    from changes
    inner join {{ ref('contract_lead_statuses') }} as statuses
        on changes.property = 'hs_lead_status' and statuses.lead_status = changes.property_value
    group by 1

),

rejection_reasons as (

    select
        handoff_id,
        property_value as rejection_reason,
        row_number() over (partition by handoff_id order by changed_at desc) as nth
    from changes
    where property = 'rejection_reason' and property_value is not null and property_value <> ''

),

sales_qualified as (

    select changes.handoff_id, min(changes.changed_at) as sql_at
    from changes
    inner join {{ ref('contract_lifecycle_stages') }} as stages
        on changes.property = 'lifecyclestage' and stages.lifecycle_stage = changes.property_value
    where stages.funnel_stage = 'sql'
    group by 1

),

deals as (

    select
        handoffs.handoff_id,
        deals.deal_id,
        deals.created_at as opportunity_at,
        deals.deal_stage,
        deals.closed_at,
        deals.amount,
        row_number() over (partition by handoffs.handoff_id order by deals.created_at, deals.deal_id) as nth
    from handoffs
    inner join {{ ref('stg_crm__associations') }} as associations
        on associations.from_object_type = 'deals'
       and associations.to_object_type = 'contacts'
       and associations.to_object_id = handoffs.crm_contact_id
    inner join {{ ref('stg_crm__deals') }} as deals
        on deals.deal_id = associations.from_object_id
       and not deals.is_archived
       and deals.created_at >= handoffs.mql_at
       and (handoffs.next_mql_at is null or deals.created_at < handoffs.next_mql_at)

),

assembled as (

    select
        handoffs.handoff_id,
        handoffs.person_id,
        handoffs.crm_contact_id,
        contacts.email,
        handoffs.owner_id,
        handoffs.mql_at,
        handoffs.mql_reason,
        handoffs.segment,
        handoffs.policy,
        handoffs.first_touch_minutes,
        handoffs.decision_minutes,
        {{ business_time_after('handoffs.owner_id', 'handoffs.mql_at', 'handoffs.first_touch_minutes') }}
            as first_touch_due_at,
        {{ business_time_after('handoffs.owner_id', 'handoffs.mql_at', 'handoffs.decision_minutes') }}
            as decision_due_at,
        first_touches.first_touch_at,
        first_touches.first_touch_type,
        first_touches.first_touch_id,
        {#- Accepting is a working lead status or a first sales touch, whichever came first. -#}
        case
            when status_decisions.accepted_status_at is null then first_touches.first_touch_at
            when first_touches.first_touch_at is null then status_decisions.accepted_status_at
            when first_touches.first_touch_at < status_decisions.accepted_status_at then first_touches.first_touch_at
            else status_decisions.accepted_status_at
        end as accepted_at,
        status_decisions.rejected_at,
        rejection_reasons.rejection_reason,
        sales_qualified.sql_at,
        deals.deal_id,
        deals.opportunity_at,
        deals.deal_stage,
        deals.closed_at,
        deals.amount,
        coalesce(contacts.is_archived, false) as is_deleted,
        contacts.archived_at as deleted_at
    from handoffs
    left join contacts on contacts.crm_contact_id = handoffs.crm_contact_id
    left join first_touches on first_touches.handoff_id = handoffs.handoff_id and first_touches.nth = 1
    left join status_decisions on status_decisions.handoff_id = handoffs.handoff_id
    left join rejection_reasons on rejection_reasons.handoff_id = handoffs.handoff_id and rejection_reasons.nth = 1
    left join sales_qualified on sales_qualified.handoff_id = handoffs.handoff_id
    left join deals on deals.handoff_id = handoffs.handoff_id and deals.nth = 1

),

{#- Everything after the as-of moment has not happened yet. -#}
as_of_view as (

    select
        assembled.*,
        {{ as_of_timestamp() }} as as_of,
        case when first_touch_at <= {{ as_of_timestamp() }} then first_touch_at end as touched_at,
        case
            when accepted_at <= {{ as_of_timestamp() }}
             and (rejected_at is null or accepted_at <= rejected_at) then 'accepted'
            when rejected_at <= {{ as_of_timestamp() }} then 'rejected'
        end as decision
    from assembled
    where assembled.mql_at <= {{ as_of_timestamp() }}

),

states as (

    -- Bare names are as_of_view's: settings is the contract's one row, read only by its qualified name.
    -- noqa: disable=RF02
    select
        as_of_view.*,
        case decision when 'accepted' then accepted_at when 'rejected' then rejected_at end as decided_at,
        case
            when is_deleted and deleted_at <= as_of and deleted_at <= first_touch_due_at
             and (touched_at is null or touched_at > deleted_at) then 'cancelled'
            when decision = 'rejected' and rejected_at <= first_touch_due_at
             and (touched_at is null or touched_at > rejected_at) then 'cancelled'
            when touched_at is not null and touched_at <= first_touch_due_at then 'met'
            when touched_at is not null then 'breached'
            when as_of >= first_touch_due_at then 'breached'
            when {{ business_minutes_between('owner_id', 'mql_at', 'as_of') }}
                 >= settings.at_risk_fraction * first_touch_minutes then 'at_risk'
            else 'open'
        end as sla_state
    from as_of_view
    cross join settings
    -- noqa: enable=RF02

)

select
    handoff_id,
    person_id,
    crm_contact_id,
    email,
    owner_id,
    mql_at,
    mql_reason,
    segment,
    policy,
    first_touch_minutes as first_touch_allowance_minutes,
    first_touch_due_at,
    touched_at as first_touch_at,
    case when touched_at is not null then first_touch_type end as first_touch_type,
    case when touched_at is not null then first_touch_id end as first_touch_id,
    case when touched_at is not null
         then cast(round(cast({{ business_minutes_between('owner_id', 'mql_at', 'touched_at') }} as numeric), 2) as numeric(12, 2))
    end as business_minutes_to_first_touch,
    decision_minutes as decision_allowance_minutes,
    decision_due_at,
    decided_at,
    decision,
    case when decided_at is not null
         then cast(round(cast({{ business_minutes_between('owner_id', 'mql_at', 'decided_at') }} as numeric), 2) as numeric(12, 2))
    end as business_minutes_to_decision,
    case when rejected_at <= as_of then rejection_reason end as rejection_reason,
    sla_state,
    case when sql_at <= as_of then sql_at end as sql_at,
    case when opportunity_at <= as_of then deal_id end as deal_id,
    case when opportunity_at <= as_of then opportunity_at end as opportunity_at,
    case
        when closed_at <= as_of and deal_stage = 'closedwon' then 'won'
        when closed_at <= as_of and deal_stage = 'closedlost' then 'lost'
        when opportunity_at <= as_of then 'opportunity'
        when sql_at <= as_of then 'sql'
        else 'none'
    end as outcome,
    cast(case when closed_at <= as_of and deal_stage = 'closedwon' then amount end as numeric(18, 2)) as won_amount,
    as_of

from states
