{#- Every identifier a person is known by, and the person: one row per identifier.

    A person is anchored on their surviving marketing lead (`lead-<id>`): marketing knows people
    first. A CRM contact joins the lead with the same normalized e-mail, else stands alone
    (`crm-<id>`); contacts merged into it are the same person. A web anonymous id joins the person
    its first identified event names, else is an anonymous visitor (`anon-<id>`). -#}
with survivors as (

    select * from {{ ref('int_identity__lead_survivors') }}

),

leads as (

    select leads.marketing_lead_id, leads.email, survivors.surviving_lead_id
    from {{ ref('stg_marketing__leads') }} as leads
    inner join survivors on survivors.marketing_lead_id = leads.marketing_lead_id

),

lead_people as (

    select
        marketing_lead_id,
        {{ dbt.concat(["'lead-'", 'surviving_lead_id']) }} as person_id
    from survivors

),

person_by_email as (

    select email, min({{ dbt.concat(["'lead-'", 'surviving_lead_id']) }}) as person_id
    from leads
    where email is not null
    group by 1

),

contacts as (

    select
        contacts.crm_contact_id,
        contacts.email,
        contacts.merged_contact_ids,
        coalesce(person_by_email.person_id, {{ dbt.concat(["'crm-'", 'contacts.crm_contact_id']) }}) as person_id
    from {{ ref('stg_crm__contacts') }} as contacts
    left join person_by_email on person_by_email.email = contacts.email
    {# A merged-away contact is its survivor's person, through the survivor's merged ids below. #}
    where not contacts.is_merged_away

),

merged_contacts as (

    {% for position in [1, 2, 3] %}
    select {{ dbt.split_part('merged_contact_ids', "';'", position) }} as crm_contact_id, person_id
    from contacts
    where merged_contact_ids is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

identified_devices as (

    select
        events.anonymous_id,
        lead_people.person_id,
        row_number() over (partition by events.anonymous_id order by events.occurred_at, events.message_id) as nth
    from {{ ref('stg_web__events') }} as events
    inner join lead_people on lead_people.marketing_lead_id = events.marketing_lead_id

),

devices as (

    select distinct anonymous_id from {{ ref('stg_web__events') }}

),

identifiers as (

    select 'marketing_lead_id' as identifier_type, marketing_lead_id as identifier, person_id
    from lead_people

    union all

    select 'crm_contact_id', crm_contact_id, person_id from contacts

    union all

    select 'crm_contact_id', crm_contact_id, person_id
    from merged_contacts
    where crm_contact_id <> ''

    union all

    select 'email', email, person_id from person_by_email

    union all

    select 'email', contacts.email, contacts.person_id
    from contacts
    where contacts.email is not null
      and not exists (select 1 from person_by_email where person_by_email.email = contacts.email)

    union all

    select
        'anonymous_id',
        devices.anonymous_id,
        coalesce(identified_devices.person_id, {{ dbt.concat(["'anon-'", 'devices.anonymous_id']) }})
    from devices
    left join identified_devices
        on identified_devices.anonymous_id = devices.anonymous_id and identified_devices.nth = 1

)

select * from identifiers
