{#- Fails for every row whose value is a share outside [0, 1]; null (nothing to divide by) passes. -#}
{% test between_zero_and_one(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}
