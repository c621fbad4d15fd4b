{#- Conversions to attribute: won deals, one row per won deal and person on it (the deal's contacts
    resolved to people). A won deal none of whose contacts resolves to a person keeps one row with
    no person, so its revenue stays visible as unattributed. A won deal without an amount is
    revenue 0; amounts are kept to the cent. -#}
with won_deals as (

    select deal_id, cast(coalesce(amount, 0) as decimal(18, 2)) as amount, created_at, closed_at
    from {{ ref('stg_crm__deals') }}
    where deal_stage = 'closedwon'
      and not is_archived
      and closed_at is not null

),

deal_people as (

    select distinct associations.from_object_id as deal_id, identifiers.person_id
    from {{ ref('stg_crm__associations') }} as associations
    inner join {{ ref('int_identity__identifiers') }} as identifiers
        on identifiers.identifier_type = 'crm_contact_id'
       and identifiers.identifier = associations.to_object_id
    where associations.from_object_type = 'deals'
      and associations.to_object_type = 'contacts'

)

select
    won_deals.deal_id,
    deal_people.person_id,
    won_deals.amount,
    won_deals.created_at as opportunity_created_at,
    won_deals.closed_at as converted_at

from won_deals
left join deal_people on deal_people.deal_id = won_deals.deal_id
