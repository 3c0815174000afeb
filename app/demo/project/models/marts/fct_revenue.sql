select
    o.order_id,
    o.customer_id,
    o.paid_amount as revenue,
    s.plan_code,
    o.ordered_at
from {{ ref('fct_orders') }} as o
left join {{ ref('stg_subscriptions') }} as s on s.customer_id = o.customer_id
where o.status = 'completed'
