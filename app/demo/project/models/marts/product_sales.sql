select
    p.product_id,
    p.product_name,
    p.category,
    count(o.order_id) as units,
    sum(o.paid_amount) as revenue
from {{ ref('stg_products') }} as p
left join {{ ref('fct_orders') }} as o on o.product_id = p.product_id
group by p.product_id, p.product_name, p.category
