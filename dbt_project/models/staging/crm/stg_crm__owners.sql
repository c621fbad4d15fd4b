{#- The owner's primary team names their desk (SDR AMER, AE EMEA, Marketing): the funnel contract
    decides which teams' activities are sales touches. -#}
with source as (

    select * from {{ source('raw_crm', 'owners') }}

),

teams as (

    select id, {{ primary_team_name('teams') }} as team_name
    from source

)

select
    cast(source.id as {{ dbt.type_string() }}) as owner_id,
    lower(trim(source.email)) as email,
    source.first_name,
    source.last_name,
    teams.team_name,
    source.archived as is_archived

from source
left join teams on teams.id = source.id
