select
    id as order_id,
    customer_id,
    amount,
    plan_code,
    ordered_at
from {{ source('raw', 'orders') }}
