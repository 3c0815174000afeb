select
    order_id,
    customer_id,
    amount as revenue,
    plan_code,
    ordered_at
from {{ ref('stg_orders') }}
