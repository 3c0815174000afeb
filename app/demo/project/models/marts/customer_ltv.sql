select
    c.customer_id,
    c.country,
    c.first_order_at,
    coalesce(sum(r.revenue), 0) as ltv
from {{ ref('dim_customers') }} as c
left join {{ ref('fct_revenue') }} as r on r.customer_id = c.customer_id
group by c.customer_id, c.country, c.first_order_at
