with source as (
    select * from {{ source('raw', 'orders') }}
)

select
    id as order_id,
    customer_id,
    ordered_at,
    lower(status) as status,
    amount_cents / 100.0 as amount,
    discount_cents / 100.0 as discount,
    channel,
    coupon_code
from source
