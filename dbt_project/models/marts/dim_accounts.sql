{#- One row per CRM company: the accounts people belong to (see dim_people), with the contract's
    segment by employee count. -#}
with companies as (

    select * from {{ ref('stg_crm__companies') }}

),

segments as (

    select * from {{ ref('int_accounts__segments') }}

)

select
    companies.crm_company_id,
    companies.company_name,
    companies.domain,
    companies.industry,
    companies.country,
    companies.employees,
    segments.segment,
    companies.created_at,
    companies.is_archived

from companies
left join segments on segments.crm_company_id = companies.crm_company_id
