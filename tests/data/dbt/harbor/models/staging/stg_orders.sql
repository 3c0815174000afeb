{{ config(materialized='view', tags=['staging']) }}

select
    id as order_id,
    customer_id,
    {{ cents_to_dollars('amount_cents') }} as amount,
    status,
    cast(ordered_at as date) as order_date
from {{ source('shop', 'orders') }}
where amount_cents >= {{ var('min_amount') }}
{% if is_incremental() %}
  and ordered_at > (select max(ordered_at) from {{ this }})
{% endif %}
