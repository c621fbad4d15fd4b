{#- A touch's weight under a position-based model (U-shaped, W-shaped). Each role (first touch,
    lead creation, ...) gives its share to the touch holding it, and what the roles leave is split
    evenly among the touches holding none; a touch holding several roles gets all their shares.
    Shares of roles no touch holds (no lead-creation touch in a W-shaped window, say) go to the
    roles that are held, in proportion, so milestones keep their part of the credit; when every
    touch holds a role, the role shares are scaled to sum to 1. -#}
{% macro position_based_weight(holds_role, role_share, held_role_shares, all_role_shares, touches_without_role) -%}
    case
        when {{ holds_role }} then
            ({{ role_share }}) / ({{ held_role_shares }})
            * case when ({{ touches_without_role }}) > 0 then ({{ all_role_shares }}) else 1 end
        else (1 - ({{ all_role_shares }})) / nullif({{ touches_without_role }}, 0)
    end
{%- endmacro %}
