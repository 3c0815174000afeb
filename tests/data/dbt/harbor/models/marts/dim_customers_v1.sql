select customer_id, email, plan_code from {{ ref('stg_customers') }}
