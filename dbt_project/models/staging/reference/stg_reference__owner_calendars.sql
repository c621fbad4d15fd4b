{#- Validated on load (unknown time zones, countries and hours out of range are quarantined), so
    this only types and normalizes. Before the first load every owner works the default calendar. -#}
with source as (

    {{ source_or_empty('raw_reference', 'owner_calendars', {
        'owner_id': dbt.type_string(), 'email': dbt.type_string(), 'time_zone': dbt.type_string(),
        'country': dbt.type_string(), 'start_hour': dbt.type_int(), 'end_hour': dbt.type_int()}) }}

)

select
    cast(owner_id as {{ dbt.type_string() }}) as owner_id,
    lower(trim(email)) as email,
    time_zone,
    upper(country) as country,
    cast(start_hour as {{ dbt.type_int() }}) as start_hour,
    cast(end_hour as {{ dbt.type_int() }}) as end_hour

from source
