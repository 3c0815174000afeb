select
    o.order_id,
    o.customer_id,
    o.product_id,
    o.status,
    o.amount,
    coalesce(p.paid_amount, 0) as paid_amount,
    o.ordered_at
from {{ ref('stg_orders') }} as o
left join {{ ref('int_order_payments') }} as p on p.order_id = o.order_id
