{#- Revenue credit of won deals to the marketing touches before them: one row per conversion (won
    deal), touch and attribution model.

    A conversion's path is every touch of the people on the deal in the contract's window before
    the close (touches after the deal was created count too: marketing goes on influencing a
    deal until it closes), ordered by time. Each model gives every touch on the path a weight;
    weights sum to exactly 1 per conversion and model, and revenue_credit = weight x amount sums
    to exactly the deal's amount (weights are kept to 12 decimals and credits to the cent; the
    rounding residual goes to the touch with the largest weight, the latest on a tie). A conversion
    with no touch in its window keeps one unattributed row per model with the whole amount.

    - first_touch / last_touch: all credit to the first / last touch.
    - linear: 1/n to each touch.
    - u_shaped: the contract's share to the first and to the last touch, the rest split evenly
      among the touches between; 1 touch takes all, 2 touches split in proportion (50/50).
    - w_shaped: the contract's shares to the first touch, the lead-creation touch (the earliest
      touch on the path that made one of the deal's people known) and the opportunity-creation
      touch (the last touch at or before the deal was created), the rest split evenly among the
      other touches. A touch holding several roles gets all their shares; a role no touch in the
      window holds gives its share to the roles that are held; when every touch holds a role (up
      to 3 touches) the shares are scaled to sum to 1.
    - time_decay: each touch weighs 2^(-days before the close / half-life), normalized. -#}

with settings as (

    -- The contract's single row; saying so keeps PostgreSQL from planning for hundreds of rows on
    -- a seed it has no statistics for yet.
    select * from {{ ref('contract_settings') }}
    limit 1  -- noqa: AM09

),

attribution_models as (

    {% for attribution_model in ['first_touch', 'last_touch', 'linear', 'u_shaped', 'w_shaped', 'time_decay'] %}
    select '{{ attribution_model }}' as attribution_model
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

conversion_people as (

    select * from {{ ref('int_attribution__conversions') }}

),

conversions as (

    select distinct deal_id, amount, opportunity_created_at, converted_at
    from conversion_people

),

paths as (

    select
        conversion_people.deal_id,
        touchpoints.*,
        settings.*,
        touchpoints.touched_at <= conversion_people.opportunity_created_at as is_before_opportunity,
        cast(
            {{ dbt.datediff('touchpoints.touched_at', 'conversion_people.converted_at', 'second') }} / 86400.0
            as double precision
        ) as days_before_conversion,
        row_number() over (
            partition by conversion_people.deal_id order by touchpoints.touched_at, touchpoints.touchpoint_id
        ) as touch_position,
        count(*) over (partition by conversion_people.deal_id) as touch_count
    from conversion_people
    cross join settings
    inner join {{ ref('int_touchpoints') }} as touchpoints
        on touchpoints.person_id = conversion_people.person_id
       and touchpoints.touched_at <= conversion_people.converted_at
       and touchpoints.touched_at >= {{ dbt.dateadd('day', '-1 * settings.attribution_window_days', 'conversion_people.converted_at') }}

),

milestones as (

    select
        paths.*,
        min(case when paths.is_lead_creation_touch then paths.touch_position end)
            over (partition by paths.deal_id) as lead_creation_position,
        max(case when paths.is_before_opportunity then paths.touch_position end)
            over (partition by paths.deal_id) as opportunity_creation_position,
        power(0.5, paths.days_before_conversion / paths.time_decay_half_life_days) as decay
    from paths

),

roles as (

    select
        milestones.*,
        coalesce(touch_position = lead_creation_position, false) as holds_lead_creation,
        coalesce(touch_position = opportunity_creation_position, false) as holds_opportunity_creation,
        -- The distinct touches holding a W-shaped role: the first, and the other milestones
        -- when they fall on other touches.
        1
        + case when lead_creation_position > 1 then 1 else 0 end
        + case when opportunity_creation_position > 1
                and opportunity_creation_position <> coalesce(lead_creation_position, 0) then 1 else 0 end
            as w_shaped_role_touches,
        w_shaped_first
        + case when lead_creation_position is not null then w_shaped_lead_creation else 0 end
        + case when opportunity_creation_position is not null then w_shaped_opportunity_creation else 0 end
            as w_shaped_held_role_shares,
        decay / sum(decay) over (partition by deal_id) as time_decay_weight
    from milestones

),

touch_weights as (

    select
        roles.deal_id,
        roles.touchpoint_id,
        roles.touch_position,
        attribution_models.attribution_model,
        case attribution_models.attribution_model
            when 'first_touch' then case when roles.touch_position = 1 then 1.0 else 0.0 end
            when 'last_touch' then case when roles.touch_position = roles.touch_count then 1.0 else 0.0 end
            when 'linear' then 1.0 / roles.touch_count
            when 'u_shaped' then {{ position_based_weight(
                holds_role='roles.touch_position in (1, roles.touch_count)',
                role_share='case when roles.touch_position = 1 then roles.u_shaped_first else 0 end
                    + case when roles.touch_position = roles.touch_count then roles.u_shaped_last else 0 end',
                held_role_shares='roles.u_shaped_first + roles.u_shaped_last',
                all_role_shares='roles.u_shaped_first + roles.u_shaped_last',
                touches_without_role='roles.touch_count - case when roles.touch_count = 1 then 1 else 2 end',
            ) }}
            when 'w_shaped' then {{ position_based_weight(
                holds_role='roles.touch_position = 1 or roles.holds_lead_creation or roles.holds_opportunity_creation',
                role_share='case when roles.touch_position = 1 then roles.w_shaped_first else 0 end
                    + case when roles.holds_lead_creation then roles.w_shaped_lead_creation else 0 end
                    + case when roles.holds_opportunity_creation then roles.w_shaped_opportunity_creation else 0 end',
                held_role_shares='roles.w_shaped_held_role_shares',
                all_role_shares='roles.w_shaped_first + roles.w_shaped_lead_creation
                    + roles.w_shaped_opportunity_creation',
                touches_without_role='roles.touch_count - roles.w_shaped_role_touches',
            ) }}
            when 'time_decay' then roles.time_decay_weight
        end as raw_weight
    from roles
    cross join attribution_models

),

credits as (

    select
        conversions.*,
        touch_weights.touchpoint_id,
        touch_weights.touch_position,
        attribution_models.attribution_model,
        case when touch_weights.deal_id is null then 1.0 else touch_weights.raw_weight end as raw_weight
    from conversions
    cross join attribution_models
    left join touch_weights
        on touch_weights.deal_id = conversions.deal_id
       and touch_weights.attribution_model = attribution_models.attribution_model

),

rounded as (

    select
        *,
        cast(raw_weight as decimal(18, 12)) as rounded_weight,
        cast(amount * raw_weight as decimal(18, 2)) as rounded_revenue_credit,
        row_number() over (
            partition by deal_id, attribution_model order by raw_weight desc, touch_position desc
        ) = 1 as takes_rounding_residual
    from credits

)

select
    {{ dbt.concat(['rounded.deal_id', "':'", 'rounded.attribution_model', "':'",
                   "coalesce(rounded.touchpoint_id, 'unattributed')"]) }} as attribution_id,
    rounded.deal_id,
    rounded.attribution_model,
    rounded.touchpoint_id,
    rounded.touchpoint_id is not null as is_attributed,
    roles.person_id,
    roles.touched_at,
    roles.touchpoint_type,
    roles.channel,
    roles.campaign,
    roles.program_id,
    roles.content,
    roles.is_content_download,
    rounded.touch_position,
    coalesce(roles.touch_count, 0) as touch_count,
    roles.holds_lead_creation as is_lead_creation_touch,
    roles.holds_opportunity_creation as is_opportunity_creation_touch,
    roles.days_before_conversion,
    rounded.opportunity_created_at,
    rounded.converted_at,
    rounded.amount as conversion_amount,
    cast(
        rounded.rounded_weight
        + case
            when rounded.takes_rounding_residual
            then 1 - sum(rounded.rounded_weight) over (partition by rounded.deal_id, rounded.attribution_model)
            else 0
        end
        as decimal(18, 12)
    ) as weight,
    cast(
        rounded.rounded_revenue_credit
        + case
            when rounded.takes_rounding_residual
            then rounded.amount
                - sum(rounded.rounded_revenue_credit) over (partition by rounded.deal_id, rounded.attribution_model)
            else 0
        end
        as decimal(18, 2)
    ) as revenue_credit

from rounded
left join roles
    on roles.deal_id = rounded.deal_id
   and roles.touchpoint_id = rounded.touchpoint_id
