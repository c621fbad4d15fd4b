{#- Every marketing lead id ever seen, and the lead that survives it. Marketing automation merges a
    duplicate into a survivor and logs a `Merge Leads` activity on the survivor with the merged
    ids (up to three per merge); merges of merges are followed two hops. -#}
with lead_merges as (

    {% for position in [1, 2, 3] %}
    select
        {{ dbt.split_part(dbt.replace(dbt.replace('merged_lead_ids', "'['", "''"), "']'", "''"), "','", position) }}
            as merged_lead_id,
        marketing_lead_id as surviving_lead_id,
        occurred_at as merged_at
    from {{ ref('stg_marketing__activities') }}
    where activity_type = 'Merge Leads'
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

merged_into as (

    select trim(merged_lead_id) as marketing_lead_id, max(surviving_lead_id) as surviving_lead_id
    from lead_merges
    where trim(merged_lead_id) <> ''
    group by 1

),

seen as (

    select marketing_lead_id from {{ ref('stg_marketing__leads') }}
    union
    select marketing_lead_id from {{ ref('stg_marketing__activities') }}
    union
    select marketing_lead_id from {{ ref('stg_marketing__program_members') }}
    union
    select marketing_lead_id from {{ ref('stg_web__events') }} where marketing_lead_id is not null
    union
    select marketing_lead_id from merged_into

)

select
    seen.marketing_lead_id,
    coalesce(second_hop.surviving_lead_id, first_hop.surviving_lead_id, seen.marketing_lead_id) as surviving_lead_id,
    first_hop.surviving_lead_id is not null as is_merged_away

from seen
left join merged_into as first_hop on first_hop.marketing_lead_id = seen.marketing_lead_id
left join merged_into as second_hop on second_hop.marketing_lead_id = first_hop.surviving_lead_id
