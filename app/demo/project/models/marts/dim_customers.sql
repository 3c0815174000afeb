select
    c.customer_id,
    c.full_name,
    c.email,
    c.country,
    c.created_at,
    min(o.ordered_at) as first_order_at,
    count(o.order_id) as order_count
from {{ ref('stg_customers') }} as c
left join {{ ref('stg_orders') }} as o on o.customer_id = c.customer_id
group by c.customer_id, c.full_name, c.email, c.country, c.created_at
