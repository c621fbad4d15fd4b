{#- One row per problem found in a source record, whatever the size of the batch it came in:
    - `flagged`: a value broken on its own (a malformed e-mail, a value outside its vocabulary, a
      missing or future timestamp, a negative amount). The record stays in the funnel; the staging
      models keep the value out of what it would corrupt (a malformed e-mail joins no identities,
      an unknown lifecycle stage maps to no stage, a negative amount is no revenue).
    - `quarantined`: a record the loader could not use at all, set aside at load with its reason.
    Keys and reasons only, never the value itself: the raw tables and quarantine tables hold those. -#}

{%- set email_rule = var('well_formed_email') %}

with contacts as (

    select
        cast(id as {{ dbt.type_string() }}) as record_id,
        trim(email) as email,
        lower(lifecyclestage) as lifecycle_stage,
        upper(hs_lead_status) as lead_status,
        {{ utc_timestamp('createdate') }} as created_at,
        _dlt_load_id as load_id
    from {{ source('raw_crm', 'contacts') }}

),

leads as (

    select
        cast(id as {{ dbt.type_string() }}) as record_id,
        trim(email) as email,
        lead_status,
        {{ utc_timestamp('created_at') }} as created_at,
        _dlt_load_id as load_id
    from {{ source('raw_marketing', 'leads') }}

),

deals as (

    select
        cast(id as {{ dbt.type_string() }}) as record_id,
        amount,
        {{ utc_timestamp('createdate') }} as created_at,
        _dlt_load_id as load_id
    from {{ source('raw_crm', 'deals') }}

),

flagged as (

    {% for system, object_type, records in [('crm', 'contacts', 'contacts'), ('marketing', 'leads', 'leads')] %}
    select
        '{{ system }}' as source_system, '{{ object_type }}' as object_type, record_id, load_id,
        'email' as field, 'malformed_email' as rule,
        'not a well-formed e-mail address: it joins no identities' as reason
    from {{ records }}
    where email is not null and not {{ matches_pattern('email', email_rule) }}

    union all

    select
        '{{ system }}', '{{ object_type }}', record_id, load_id,
        'created_at', 'missing_timestamp', 'no creation date'
    from {{ records }}
    where created_at is null

    union all

    select
        '{{ system }}', '{{ object_type }}', record_id, load_id,
        'created_at', 'future_timestamp', 'created after the moment the models ran: a broken clock or import'
    from {{ records }}
    where created_at > {{ as_of_timestamp() }}

    union all
    {% endfor %}

    select
        'crm', 'contacts', record_id, load_id,
        'lifecyclestage', 'unknown_value', 'lifecycle stage the funnel contract does not map: it maps to no stage'
    from contacts
    where lifecycle_stage is not null
      and lifecycle_stage not in (select lifecycle_stage from {{ ref('contract_lifecycle_stages') }})

    union all

    select
        'crm', 'contacts', record_id, load_id,
        'hs_lead_status', 'unknown_value', 'lead status outside the CRM''s vocabulary: it decides no handoff'
    from contacts
    where lead_status is not null
      and lead_status not in ('{{ var("crm_lead_statuses") | join("', '") }}')

    union all

    select
        'marketing', 'leads', record_id, load_id,
        'lead_status', 'unknown_value', 'lead status outside the marketing automation''s vocabulary'
    from leads
    where lead_status is not null
      and lead_status not in ('{{ var("marketing_lead_statuses") | join("', '") }}')

    union all

    select
        'crm', 'deals', record_id, load_id,
        'amount', 'negative_amount', 'a negative amount: it counts as no revenue'
    from deals
    where amount < 0

),

quarantined as (

    select
        'crm' as source_system, object_type, record_id, _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as field, 'quarantined' as rule, reason
    from ({{ source_or_empty('raw_crm', 'quarantine', {
        'object_type': dbt.type_string(), 'record_id': dbt.type_string(),
        'reason': dbt.type_string(), '_dlt_load_id': dbt.type_string()}) }}) as crm

    union all

    select
        'web', 'events', {{ dbt.concat(['file', "':'", dbt.cast('line_offset', dbt.type_string())]) }},
        _dlt_load_id, cast(null as {{ dbt.type_string() }}), 'quarantined', reason
    from ({{ source_or_empty('raw_web', 'quarantine', {
        'file': dbt.type_string(), 'line_offset': dbt.type_bigint(),
        'reason': dbt.type_string(), '_dlt_load_id': dbt.type_string()}) }}) as web

    union all

    select
        'reference', 'owner_calendars', {{ dbt.concat(['file', "':'", dbt.cast('line_number', dbt.type_string())]) }},
        _dlt_load_id, cast(null as {{ dbt.type_string() }}), 'quarantined', reason
    from ({{ source_or_empty('raw_reference', 'quarantine', {
        'file': dbt.type_string(), 'line_number': dbt.type_bigint(),
        'reason': dbt.type_string(), '_dlt_load_id': dbt.type_string()}) }}) as reference

)

select
    source_system,
    object_type,
    record_id,
    field,
    rule,
    'flagged' as disposition,
    reason,
    load_id
from flagged

union all

select source_system, object_type, record_id, field, rule, 'quarantined', reason, load_id
from quarantined
