{#- Fails for every combination of the given columns that more than one row shares: the grain of a
    model keyed by several columns. Null is a value here, as in `group by`. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as rows_sharing_it
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
