select
    order_id,
    sum(amount) as paid_amount,
    count(*) as payment_count,
    max(paid_at) as last_paid_at
from {{ ref('stg_payments') }}
group by order_id
