select
    customer_id::varchar as customer_id,
    count(*)::bigint as order_count,
    sum(amount)::decimal(18, 2) as lifetime_value,
    max(plan_code) as plan_code
from {{ ref('orders') }}
group by customer_id
