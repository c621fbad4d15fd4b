with source as (

    select * from {{ source('raw_crm', 'contacts') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_string() }}) as crm_contact_id,
        lower(trim(email)) as email,
        firstname as first_name,
        lastname as last_name,
        lower(lifecyclestage) as lifecycle_stage,
        cast(hubspot_owner_id as {{ dbt.type_string() }}) as owner_id,
        {{ utc_timestamp('createdate') }} as created_at,
        {{ utc_timestamp('lastmodifieddate') }} as updated_at,
        archived as is_archived

    from source

)

select * from renamed
