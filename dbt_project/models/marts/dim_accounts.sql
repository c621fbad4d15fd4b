{#- One row per CRM company: the accounts people belong to (see dim_people), with the contract's
    segment by employee count. -#}
with companies as (

    select * from {{ ref('stg_crm__companies') }}

),

{#- A company takes the largest band its employee count reaches. -#}
segments as (

    select
        companies.crm_company_id,
        segments.segment,
        row_number() over (partition by companies.crm_company_id order by segments.min_employees desc) as nth
    from companies
    inner join {{ ref('contract_segments') }} as segments
        on companies.employees >= segments.min_employees

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
left join segments on segments.crm_company_id = companies.crm_company_id and segments.nth = 1
