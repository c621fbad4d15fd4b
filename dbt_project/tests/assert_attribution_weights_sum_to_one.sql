-- Every conversion's weights sum to exactly 1 under every attribution model.
select deal_id, attribution_model, sum(weight) as total_weight
from {{ ref('fct_attribution') }}
group by 1, 2
having sum(weight) <> 1
