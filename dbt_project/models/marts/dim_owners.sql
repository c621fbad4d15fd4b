{#- One row per CRM owner (sales or marketing user), named, with the team SLA reports group by. -#}
select
    owner_id,
    {{ dbt.concat(['first_name', "' '", 'last_name']) }} as owner_name,
    first_name,
    last_name,
    email,
    team_name,
    is_archived

from {{ ref('stg_crm__owners') }}
