select
    date_trunc('month', ordered_at) as order_month,
    channel,
    sum(net_amount) as revenue,
    sum(discount) as discounts,
    count(*) as orders
from {{ ref('fct_orders') }}
group by 1, 2
