select
    id as subscription_id,
    customer_id,
    plan_code,
    mrr,
    trial_days,
    started_at,
    cancelled_at
from {{ source('raw', 'subscriptions') }}
