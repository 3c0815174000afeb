select
    id::integer as order_id,
    customer_id::integer as customer_id,
    amount::decimal(10, 2) as amount,
    status::varchar as status,
    plan_code::varchar as plan_code,
    ordered_at::date as order_date
from {{ ref('raw_orders') }}
