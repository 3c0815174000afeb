select order_date, sum(amount)::decimal(18, 2) as revenue
from {{ ref('orders') }}
group by order_date
