select
    d.customer_id,
    sum(r.revenue) as lifetime_revenue
from {{ ref('dim_customers') }} as d
left join {{ ref('dim_customers', v=1) }} as d1 on d.customer_id = d1.customer_id
left join {{ ref('harbor', 'fct_revenue') }} as r on r.plan_code = d1.plan_code
group by d.customer_id
