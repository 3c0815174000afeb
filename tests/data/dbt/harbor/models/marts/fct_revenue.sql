{{
  config(
    unique_key='order_id',
    group='finance',
    access='public'
  )
}}
with orders as (
    select * from {{ ref('stg_orders') }}
),
customers as (
    select * from {{ ref('stg_customers') }}
)
select
    orders.order_id,
    orders.order_date,
    customers.plan_code,
    orders.amount as revenue
from orders
join customers on orders.customer_id = customers.customer_id
where orders.status <> 'returned'
