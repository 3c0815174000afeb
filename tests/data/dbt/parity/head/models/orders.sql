select
    id::integer as order_id,
    customer_id::varchar as customer_id,
    amount::decimal(10, 2) as amount,
    plan_code::varchar as plan_code,
    ordered_at::date as order_date
from {{ ref('raw_orders') }}
