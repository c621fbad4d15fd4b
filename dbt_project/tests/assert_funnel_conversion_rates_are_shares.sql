{#- Every conversion rate lies in [0, 1], because each stage's count is at most the previous one's. -#}
select *
from {{ ref('mart_funnel_conversion') }}
where not (
        accepted + rejected <= mqls
    and sqls <= mqls
    and opportunities <= sqls
    and won + lost <= opportunities
)
   or acceptance_rate not between 0 and 1
   or mql_to_sql_rate not between 0 and 1
   or sql_to_opportunity_rate not between 0 and 1
   or opportunity_to_won_rate not between 0 and 1
   or mql_to_won_rate not between 0 and 1
