{#- CRM activities that count as sales touches under the funnel contract, on the contacts they were
    logged against: the right activity (type, direction, status) by an owner on a sales team.
    Marketing's automated e-mails and incoming replies never qualify. -#}
with engagements as (

    select * from {{ ref('stg_crm__engagements') }}
    where not is_archived

),

sales_owners as (

    select distinct owners.owner_id
    from {{ ref('stg_crm__owners') }} as owners
    inner join {{ ref('contract_sales_teams') }} as teams
        on owners.team_name like teams.team_pattern

),

qualifying as (

    select distinct engagements.*
    from engagements
    inner join sales_owners on sales_owners.owner_id = engagements.owner_id
    inner join {{ ref('contract_sales_touch_activities') }} as rules
        on rules.engagement_type = engagements.engagement_type
       and (rules.direction is null or rules.direction = engagements.direction)
       and (rules.status is null or rules.status = engagements.status)

)

select
    qualifying.engagement_id,
    qualifying.engagement_type,
    qualifying.owner_id,
    qualifying.occurred_at,
    associations.to_object_id as crm_contact_id

from qualifying
inner join {{ ref('stg_crm__associations') }} as associations
    on associations.from_object_type = qualifying.object_type
   and associations.from_object_id = qualifying.engagement_id
   and associations.to_object_type = 'contacts'
