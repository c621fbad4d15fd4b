{#- Calls, e-mails, meetings and tasks as one table of activities logged by CRM users: what the
    funnel contract's sales-touch rule is applied to. `occurred_at` is HubSpot's hs_timestamp
    (when it happened; a task's due date). -#}
{% set engagement_types = {
    'call': {'table': 'calls', 'direction': 'hs_call_direction', 'status': 'hs_call_status'},
    'email': {'table': 'emails', 'direction': 'hs_email_direction', 'status': 'hs_email_status'},
    'meeting': {'table': 'meetings', 'direction': 'null', 'status': 'hs_meeting_outcome'},
    'task': {'table': 'tasks', 'direction': 'null', 'status': 'hs_task_status'},
} %}

{% for engagement_type, columns in engagement_types.items() %}
select
    cast(id as {{ dbt.type_string() }}) as engagement_id,
    '{{ engagement_type }}' as engagement_type,
    '{{ columns.table }}' as object_type,
    cast(hubspot_owner_id as {{ dbt.type_string() }}) as owner_id,
    {{ utc_timestamp('hs_timestamp') }} as occurred_at,
    {{ utc_timestamp('hs_createdate') }} as logged_at,
    cast(upper({{ columns.direction }}) as {{ dbt.type_string() }}) as direction,
    cast(upper({{ columns.status }}) as {{ dbt.type_string() }}) as status,
    archived as is_archived

from {{ source('raw_crm', columns.table) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
