{#- Each CRM company's segment under the funnel contract: the largest employee band it reaches. -#}
with companies as (

    select crm_company_id, employees from {{ ref('stg_crm__companies') }}

),

banded as (

    select
        companies.crm_company_id,
        companies.employees,
        segments.segment,
        row_number() over (partition by companies.crm_company_id order by segments.min_employees desc) as nth
    from companies
    inner join {{ ref('contract_segments') }} as segments
        on segments.min_employees <= companies.employees

)

select crm_company_id, employees, segment
from banded
where nth = 1
