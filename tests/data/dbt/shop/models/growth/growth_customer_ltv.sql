with orders as (
    select customer_id, net_amount from {{ ref('fct_orders') }}
),

customers as (
    select customer_id, signup_date from {{ ref('dim_customers') }}
)

select
    customers.customer_id,
    date_trunc('month', customers.signup_date) as signup_month,
    coalesce(sum(orders.net_amount), 0) as lifetime_value,
    count(orders.customer_id) as order_count
from customers
left join orders on orders.customer_id = customers.customer_id
group by 1, 2
