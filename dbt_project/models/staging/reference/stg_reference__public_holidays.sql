with source as (

    {{ source_or_empty('raw_reference', 'public_holidays', {
        'country': dbt.type_string(), 'holiday_date': 'date', 'holiday_name': dbt.type_string()}) }}

)

select
    upper(country) as country,
    cast(holiday_date as date) as holiday_date,
    holiday_name

from source
