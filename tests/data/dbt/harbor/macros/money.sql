{% macro cents_to_dollars(column, scale=2) -%}
    ({{ column }} / 100)::numeric(16, {{ scale }})
{%- endmacro %}

{% macro limit_zero() %}{{ return('limit 0') }}{% endmacro %}
