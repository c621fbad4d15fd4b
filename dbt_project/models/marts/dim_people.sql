{#- One row per resolved person (see int_identity__identifiers): anonymous visitors, people marketing
    knows and CRM contacts alike, with their records in each system, their account, where they
    came from and where they stand in the funnel now. -#}
with identifiers as (

    select * from {{ ref('int_identity__identifiers') }}

),

people as (

    select distinct person_id from identifiers

),

{#- A person may have several CRM contacts (duplicates): the live one created first speaks for them;
    one merged into another is not live. -#}
contacts as (

    select
        identifiers.person_id,
        contacts.*,
        row_number() over (
            partition by identifiers.person_id order by contacts.created_at, contacts.crm_contact_id
        ) as nth
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join identifiers
        on identifiers.identifier_type = 'crm_contact_id' and identifiers.identifier = contacts.crm_contact_id
    where not contacts.is_archived and not contacts.is_merged_away

),

archived_contacts as (

    select distinct identifiers.person_id
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join identifiers
        on identifiers.identifier_type = 'crm_contact_id' and identifiers.identifier = contacts.crm_contact_id
    where contacts.is_archived

),

lead_ids as (

    select identifiers.person_id, survivors.marketing_lead_id, survivors.surviving_lead_id
    from {{ ref('int_identity__lead_survivors') }} as survivors
    inner join identifiers
        on identifiers.identifier_type = 'marketing_lead_id' and identifiers.identifier = survivors.marketing_lead_id

),

{#- Every lead of a person survives into the same one (it names the person). -#}
surviving_leads as (

    select distinct person_id, surviving_lead_id as marketing_lead_id
    from lead_ids

),

leads as (

    select surviving_leads.person_id, leads.*
    from surviving_leads
    inner join {{ ref('stg_marketing__leads') }} as leads
        on leads.marketing_lead_id = surviving_leads.marketing_lead_id

),

deleted_leads as (

    select surviving_leads.person_id
    from surviving_leads
    inner join {{ ref('stg_marketing__deleted_leads') }} as deleted
        on deleted.marketing_lead_id = surviving_leads.marketing_lead_id

),

emails as (

    select person_id, min(identifier) as email
    from identifiers
    where identifier_type = 'email'
    group by 1

),

{#- The program that acquired the person first, over all their leads (merged-away ones too). -#}
acquisitions as (

    select
        lead_ids.person_id,
        members.program_id,
        row_number() over (
            partition by lead_ids.person_id order by members.member_since, members.program_id
        ) as nth
    from {{ ref('stg_marketing__program_members') }} as members
    inner join lead_ids on lead_ids.marketing_lead_id = members.marketing_lead_id
    where members.is_acquisition_program

),

companies as (

    select * from {{ ref('stg_crm__companies') }}
    where not is_archived

),

contact_companies as (

    select associations.from_object_id as crm_contact_id, min(companies.crm_company_id) as crm_company_id
    from {{ ref('stg_crm__associations') }} as associations
    inner join companies on companies.crm_company_id = associations.to_object_id
    where associations.from_object_type = 'contacts' and associations.to_object_type = 'companies'
    group by 1

),

domain_companies as (

    select domain, min(crm_company_id) as crm_company_id
    from companies
    where domain is not null
    group by 1

),

transitions as (

    select * from {{ ref('fct_stage_transitions') }}

),

current_stages as (

    select person_id, stage, entered_at
    from transitions
    where exited_at is null

),

histories as (

    select
        person_id,
        min(entered_at) as first_seen_at,
        count(handoff_id) > 0 as was_handed_off
    from transitions
    group by 1

),

profiles as (

    select
        people.person_id,
        contacts.crm_contact_id,
        surviving_leads.marketing_lead_id,
        coalesce(contacts.email, leads.email, emails.email) as email,
        coalesce(contacts.first_name, leads.first_name) as first_name,
        coalesce(contacts.last_name, leads.last_name) as last_name,
        contact_companies.crm_company_id as associated_company_id,
        contacts.lifecycle_stage,
        {#- The funnel knows a handed-off person's stage better than the CRM (a rejected lead goes
            back to `lead` there); a contact sales created without a handoff has only the CRM's. -#}
        case
            when histories.was_handed_off or contacts.crm_contact_id is null then current_stages.stage
            else coalesce(lifecycle_stages.funnel_stage, 'unmapped')
        end as funnel_stage,
        contacts.owner_id,
        lower(coalesce(contacts.analytics_source, replace(leads.lead_source, ' ', '_'))) as acquisition_source,
        acquisitions.program_id as acquisition_program_id,
        leads.lead_score,
        histories.first_seen_at,
        {#- Deleted: some system deleted the person and no system still holds them. -#}
        (deleted_leads.person_id is not null or archived_contacts.person_id is not null)
            and contacts.crm_contact_id is null
            and leads.marketing_lead_id is null as is_deleted
    from people
    left join contacts on contacts.person_id = people.person_id and contacts.nth = 1
    left join archived_contacts on archived_contacts.person_id = people.person_id
    left join surviving_leads on surviving_leads.person_id = people.person_id
    left join leads on leads.person_id = people.person_id
    left join deleted_leads on deleted_leads.person_id = people.person_id
    left join emails on emails.person_id = people.person_id
    left join acquisitions on acquisitions.person_id = people.person_id and acquisitions.nth = 1
    left join contact_companies on contact_companies.crm_contact_id = contacts.crm_contact_id
    left join {{ ref('contract_lifecycle_stages') }} as lifecycle_stages
        on lifecycle_stages.lifecycle_stage = contacts.lifecycle_stage
    left join current_stages on current_stages.person_id = people.person_id
    left join histories on histories.person_id = people.person_id

)

select
    profiles.person_id,
    profiles.crm_contact_id,
    profiles.marketing_lead_id,
    profiles.email,
    profiles.first_name,
    profiles.last_name,
    coalesce(profiles.associated_company_id, domain_companies.crm_company_id) as crm_company_id,
    case
        when profiles.associated_company_id is not null then 'association'
        when domain_companies.crm_company_id is not null then 'email_domain'
    end as account_matched_by,
    profiles.lifecycle_stage,
    profiles.funnel_stage,
    profiles.owner_id,
    profiles.acquisition_source,
    profiles.acquisition_program_id,
    programs.program_name as acquisition_program_name,
    profiles.lead_score,
    {#- Bands of 50 points; the contract's MQL threshold (100) opens the third. -#}
    case
        when profiles.lead_score < 50 then '0-49'
        when profiles.lead_score < 100 then '50-99'
        when profiles.lead_score < 150 then '100-149'
        when profiles.lead_score >= 150 then '150+'
    end as lead_score_band,
    profiles.first_seen_at,
    profiles.is_deleted

from profiles
left join domain_companies
    on domain_companies.domain = {{ dbt.split_part('profiles.email', "'@'", 2) }}
left join {{ ref('stg_marketing__programs') }} as programs
    on programs.program_id = profiles.acquisition_program_id
