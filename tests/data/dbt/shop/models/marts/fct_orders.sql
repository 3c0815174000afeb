{{ config(materialized='table') }}

select
    cast(order_id as integer) as order_id,
    cast(customer_id as integer) as customer_id,
    ordered_at,
    status,
    cast(amount as decimal(18, 2)) as amount,
    cast(discount as decimal(18, 2)) as discount,
    cast(amount - discount as decimal(18, 2)) as net_amount,
    channel,
    coupon_code
from {{ ref('stg_orders') }}
where status <> 'cancelled'
